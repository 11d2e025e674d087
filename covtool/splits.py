"""Split strategies at the level of the group, and the leakage checks.

The TEM virus benchmark showed that *how* images are split changes results dramatically (macro F1
0.893 with its representative split, 0.640 with a bad one). Splits here are made per ``group`` (a
source image, a patient) and inherited by every row of the group, so patches cut from one image
never straddle train and test.

All functions are pure: they take a DataFrame with one row per item and return the assignment per
group; nothing is read or written here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from covtool.core.errors import CovtoolError, ManifestError
from covtool.core.manifest import row_error_like

SPLITS = ("train", "val", "test")
#: TEM paper: "a repeating sequence to the training, test, training, validation, and training sets"
REPRESENTATIVE_CYCLE = ("train", "test", "train", "val", "train")
STRATEGIES = ("representative", "bad", "random", "kfold")


@dataclass(frozen=True)
class Groups:
    """One row per group: its class and the count used to order it."""

    table: pd.DataFrame   # columns: group, label, count, rows

    def of_class(self, label: str) -> pd.DataFrame:
        return self.table[self.table["label"] == label]


def group_ids(df: pd.DataFrame) -> pd.Series:
    """Each row's group: the ``group`` column, or ``id`` (one item, one group) when there is none."""
    for col in ("group", "id"):
        if col in df.columns:
            return df[col].astype(str)
    name = df.attrs.get("manifest")
    have = ", ".join(map(str, df.columns)) or "none"
    raise ManifestError(f"missing column group (or id, one group per row) (columns: {have})",
                        name, 1 if name else None)


def group_table(df: pd.DataFrame, count_column: str | None = "particles",
                class_column: str = "label") -> Groups:
    """Reduce an item manifest to its groups.

    A group's class is its rows' ``class_column`` (one per group, or an error naming the group);
    CT slices are stratified by the patient's label, not the slice's.
    Its count is its rows' ``count_column`` value (equal across the group's rows), or, when that
    column is absent, the number of rows of the group (patches per source image).
    """
    name = df.attrs.get("manifest")
    groups = group_ids(df)
    if class_column not in df.columns:
        raise ManifestError(f"missing column {class_column} (the class of each group)",
                            name, 1 if name else None)
    rows = []
    for g, idx in groups.groupby(groups, sort=False).groups.items():
        sub = df.loc[idx]
        labels = sub[class_column].unique()
        if len(labels) != 1:
            raise ManifestError(f"group '{g}' has more than one label ({', '.join(map(str, labels))})",
                                name, row_error_like(df, idx[0]))
        if count_column and count_column in df.columns:
            values = pd.to_numeric(sub[count_column], errors="coerce")
            if values.isna().any():
                bad = sub.index[values.isna().to_numpy()][0]
                raise ManifestError(f"'{df.at[bad, count_column]}' in column '{count_column}' is not a number",
                                    name, row_error_like(df, bad))
            if values.nunique() != 1:
                raise ManifestError(f"group '{g}' has different '{count_column}' values on its rows",
                                    name, row_error_like(df, idx[0]))
            count = float(values.iloc[0])
        else:
            count = float(len(sub))
        rows.append({"group": str(g), "label": str(labels[0]), "count": count, "rows": len(sub)})
    return Groups(pd.DataFrame(rows, columns=["group", "label", "count", "rows"]))


def _ordered(groups: pd.DataFrame) -> pd.DataFrame:
    """Ascending by count, ties by group id (deterministic)."""
    return groups.sort_values(["count", "group"], kind="mergesort")


def _need(label: str, n: int, minimum: int, strategy: str) -> None:
    if n < minimum:
        raise CovtoolError(f"class '{label}' has {n} group(s); the {strategy} split needs at least "
                           f"{minimum} to give every split one")


def representative_split(groups: Groups) -> dict[str, str]:
    """Within each class, by ascending count: train, test, train, val, train, repeated (~60/20/20)."""
    out = {}
    for label in sorted(groups.table["label"].unique()):
        g = _ordered(groups.of_class(label))
        _need(label, len(g), 4, "representative")
        for i, gid in enumerate(g["group"]):
            out[gid] = REPRESENTATIVE_CYCLE[i % len(REPRESENTATIVE_CYCLE)]
    return out


def boundaries(n: int, fractions: Sequence[float]) -> tuple[int, int]:
    """Cut points of ``n`` ordered items for train/val/test fractions (rounded half up)."""
    a = int(np.floor(n * fractions[0] + 0.5))
    b = int(np.floor(n * (fractions[0] + fractions[1]) + 0.5))
    return a, b


def bad_split(groups: Groups, fractions: Sequence[float] = (0.6, 0.2, 0.2)) -> dict[str, str]:
    """Within each class, by ascending count: the first 60 % to train, the next 20 % to val, the rest to test."""
    return _cut(groups, fractions, order="count", strategy="bad")


def random_split(groups: Groups, fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0) -> dict[str, str]:
    """Stratified by class: a seeded shuffle of each class's groups, then cut by ``fractions``."""
    return _cut(groups, fractions, order="random", strategy="random", seed=seed)


def _cut(groups: Groups, fractions, order: str, strategy: str, seed: int = 0) -> dict[str, str]:
    fractions = check_fractions(fractions)
    out = {}
    for c_i, label in enumerate(sorted(groups.table["label"].unique())):
        g = groups.of_class(label)
        if order == "count":
            ids = _ordered(g)["group"].tolist()
        else:
            ids = sorted(g["group"])
            np.random.default_rng([seed, c_i]).shuffle(ids)
        a, b = boundaries(len(ids), fractions)
        if min(a, b - a, len(ids) - b) < 1 and all(f > 0 for f in fractions):
            raise CovtoolError(f"class '{label}' has {len(ids)} group(s); too few for a {strategy} split "
                               f"of {'/'.join(f'{f:g}' for f in fractions)} with every split non-empty")
        for i, gid in enumerate(ids):
            out[gid] = "train" if i < a else "val" if i < b else "test"
    return out


def kfold_split(groups: Groups, folds: int = 5, seed: int = 0) -> dict[str, int]:
    """Stratified k-fold at group level: each group's ``fold`` is the one whose test part holds it.

    Within each class the groups are shuffled (seeded) and dealt round-robin to folds, so every
    fold gets ``n // k`` or ``n // k + 1`` groups of every class.
    """
    if folds < 2:
        raise CovtoolError(f"--folds must be at least 2, got {folds}")
    out = {}
    offset = 0
    for c_i, label in enumerate(sorted(groups.table["label"].unique())):
        ids = sorted(groups.of_class(label)["group"])
        _need(label, len(ids), folds, f"{folds}-fold")
        np.random.default_rng([seed, c_i]).shuffle(ids)
        for i, gid in enumerate(ids):
            out[gid] = (i + offset) % folds
        offset += len(ids)  # start the next class where this one stopped: folds stay balanced
    return out


def fold_to_split(fold: int, k: int, test_fold: int, val_fold: int | None) -> str:
    if fold == test_fold:
        return "test"
    if val_fold is not None and fold == val_fold:
        return "val"
    return "train"


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    f = tuple(float(x) for x in fractions)
    if len(f) != 3 or any(x < 0 for x in f) or not np.isclose(sum(f), 1.0):
        raise CovtoolError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    return f  # type: ignore[return-value]


def split_table(df: pd.DataFrame, count_column: str | None = "particles",
                class_column: str = "label") -> pd.DataFrame:
    """TEM Table 1 style: per class, groups (images) and counts (particles) per split and total."""
    g = group_table(df, count_column, class_column).table
    split_of = df.groupby(group_ids(df))["split"].first()
    g["split"] = g["group"].map(split_of)
    rows = []
    for label, sub in g.groupby("label", sort=True):
        row = {"class": label}
        for s in SPLITS:
            row[f"images_{s}"] = int((sub["split"] == s).sum())
        row["images_total"] = len(sub)
        for s in SPLITS:
            row[f"{count_column or 'count'}_{s}"] = float(sub.loc[sub["split"] == s, "count"].sum())
        row[f"{count_column or 'count'}_total"] = float(sub["count"].sum())
        rows.append(row)
    out = pd.DataFrame(rows)
    num = [c for c in out.columns if c != "class"]
    total = {"class": "total", **{c: out[c].sum() for c in num}}
    out = pd.concat([out, pd.DataFrame([total])], ignore_index=True)
    for c in num:
        if (out[c] == out[c].round()).all():
            out[c] = out[c].astype(int)
    return out


def leakage_problems(df: pd.DataFrame) -> list[str]:
    """Why a split manifest is unsafe.

    A group in two splits, a group in the test parts of two folds, a class missing from a split
    (or from a fold's test part) that exists elsewhere in the manifest.
    """
    problems = []
    groups = group_ids(df)
    for col, what in (("split", "splits"), ("fold", "folds' test parts")):
        if col not in df.columns:
            continue
        vals = df[col].astype(str)
        n = vals[vals != ""].groupby(groups[vals != ""]).nunique()
        bad = sorted(n[n > 1].index.astype(str))
        if bad:
            problems.append(f"{len(bad)} group(s) in two {what}: {', '.join(bad[:10])}{' ...' if len(bad) > 10 else ''}")
    if "label" in df.columns:
        for col, what in (("split", ""), ("fold", "the test part of fold ")):
            if col not in df.columns:
                continue
            vals = df[col].astype(str)
            present = sorted((s for s in vals.unique() if s != ""), key=_split_order)
            for label in sorted(df["label"].unique()):
                have = set(vals[df["label"] == label])
                missing = [s for s in present if s not in have]
                if missing:
                    problems.append(f"class '{label}' is missing from {what}{', '.join(missing)}")
    return problems


def _split_order(value: str):
    """Fold numbers numerically (2 before 10), split names alphabetically."""
    return (0, int(value), "") if value.isdigit() else (1, 0, value)
