"""Split strategies at the level of the group, and the leakage checks.

The TEM virus benchmark showed that *how* images are split changes results dramatically (macro F1
0.893 with its representative split, 0.640 with a bad one). Splits here are made per ``group`` (a
source image, a patient) and inherited by every row of the group, so patches cut from one image
never straddle train and test.

All functions are pure: they take a DataFrame with one row per item and return the assignment per
group (or the manifest with it); nothing is read or written here. :class:`SplitPlan` checks every
option combination of ``covtool split`` before any work; :func:`assign_split` and :func:`inherit`
make the split manifest and :func:`split_summary` its per-class table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from covtool.core.errors import CovtoolError, ManifestError, ParameterError
from covtool.core.manifest import row_error, row_error_like

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


def require_cells(df: pd.DataFrame, column: str) -> None:
    """Raise :class:`ManifestError` at the file and line of the first empty ``column`` cell: an
    empty group would join unrelated rows into one group, an empty label be one more class."""
    empty = (df[column].astype(str).str.strip() == "").to_numpy()
    if empty.any():
        raise ManifestError(f"empty value in column '{column}'", df.attrs.get("manifest"),
                            row_error_like(df, df.index[empty][0]))


def group_ids(df: pd.DataFrame) -> pd.Series:
    """Each row's group: the ``group`` column, or ``id`` (one item, one group) when there is none;
    an empty cell is a :class:`ManifestError` naming its line (:func:`require_cells`)."""
    for col in ("group", "id"):
        if col in df.columns:
            require_cells(df, col)
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
    require_cells(df, class_column)
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
        raise ParameterError("folds", f"must be at least 2, got {folds}")
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
    """Three non-negative train/val/test proportions summing to 1 (a ParameterError otherwise)."""
    f = tuple(float(x) for x in fractions)
    if len(f) != 3 or any(x < 0 for x in f) or not np.isclose(sum(f), 1.0):
        shown = ",".join(f"{x:g}" for x in f)
        raise ParameterError("fractions", f"must be three non-negative numbers summing to 1, got {shown}")
    return f  # type: ignore[return-value]


def parse_fractions(text: str) -> tuple[float, float, float]:
    """``"0.6,0.2,0.2"`` as checked fractions."""
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise ParameterError("fractions", f"expects three numbers TRAIN,VAL,TEST, got {text!r}")
    return check_fractions(parts)


@dataclass(frozen=True)
class SplitPlan:
    """What ``covtool split`` is asked to do, every option combination checked on construction
    (before any manifest is read).

    Parameters
    ----------
    strategy : str, optional
        One of :data:`STRATEGIES`; None with ``source`` (inherit a split instead).
    source : bool
        The split is inherited from another manifest (:func:`inherit`).
    fractions : str
        ``TRAIN,VAL,TEST`` proportions for ``bad`` and ``random``.
    folds : int
        Number of folds for ``kfold``.
    fold, val_fold : int, optional
        With ``kfold``: also write ``split`` for this fold (its test part is test, ``val_fold``'s is
        val).
    seed : int
    """

    strategy: str | None = None
    source: bool = False
    fractions: str = "0.6,0.2,0.2"
    folds: int = 5
    fold: int | None = None
    val_fold: int | None = None
    seed: int = 0

    def __post_init__(self):
        if self.source:
            if self.strategy is not None:
                raise ParameterError("source", "inherits a split; do not give {strategy} too", also=("strategy",))
        elif self.strategy is None:
            raise ParameterError("strategy", f"is required (one of {', '.join(STRATEGIES)}), or {{source}} "
                                 "a manifest to inherit the split from", also=("source",))
        elif self.strategy not in STRATEGIES:
            raise ParameterError("strategy", f"must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.strategy in ("bad", "random"):
            parse_fractions(self.fractions)
        if self.strategy == "kfold" and self.folds < 2:
            raise ParameterError("folds", f"must be at least 2, got {self.folds}")
        for param, value in (("fold", self.fold), ("val_fold", self.val_fold)):
            if value is not None and self.strategy != "kfold":
                raise ParameterError(param, "needs {strategy} kfold", also=("strategy",))
        if self.fold is not None and not 0 <= self.fold < self.folds:
            raise ParameterError("fold", f"{self.fold} is outside 0..{self.folds - 1}")
        if self.val_fold is not None and (self.fold is None or not 0 <= self.val_fold < self.folds
                                          or self.val_fold == self.fold):
            raise ParameterError("val_fold", f"needs {{fold}} and must be another fold in 0..{self.folds - 1}",
                                 also=("fold",))


def assign_split(df: pd.DataFrame, plan: SplitPlan, class_column: str = "label",
                 count_column: str | None = "particles") -> pd.DataFrame:
    """``df`` with its ``split`` (or ``fold``, and ``split`` with ``plan.fold``) by ``plan.strategy``;
    errors of a strategy (a class with too few groups) name the manifest."""
    groups = group_table(df, count_column, class_column)
    gcol = group_ids(df)
    out = df.copy()
    try:
        if plan.strategy == "kfold":
            folds = kfold_split(groups, plan.folds, plan.seed)
            out["fold"] = [folds[g] for g in gcol]
            if plan.fold is not None:
                out["split"] = [fold_to_split(folds[g], plan.folds, plan.fold, plan.val_fold) for g in gcol]
            return out
        if plan.strategy == "representative":
            assign = representative_split(groups)
        elif plan.strategy == "bad":
            assign = bad_split(groups, parse_fractions(plan.fractions))
        else:
            assign = random_split(groups, parse_fractions(plan.fractions), plan.seed)
    except CovtoolError as exc:
        if exc.path is None:
            exc.path = df.attrs.get("manifest")
        raise
    out["split"] = [assign[g] for g in gcol]
    return out


def inherit(df: pd.DataFrame, source: pd.DataFrame) -> pd.DataFrame:
    """Give every row the split (and fold) of its group in ``source`` (an image-level manifest)."""
    src_groups = group_ids(source)
    cols = [c for c in ("split", "fold") if c in source.columns]
    if not cols:
        raise ManifestError("has neither a 'split' nor a 'fold' column to inherit", source.attrs.get("manifest"), 1)
    per = {}
    for idx, g in zip(source.index, src_groups):
        vals = tuple(source.at[idx, c] for c in cols)
        if per.setdefault(g, vals) != vals:
            raise row_error(source, idx, f"group '{g}' has two different splits")
    if "group" not in df.columns:
        raise ManifestError("missing column group (needed to inherit a split)", df.attrs.get("manifest"), 1)
    out = df.copy()
    for i, c in enumerate(cols):
        values = []
        for idx, g in zip(out.index, out["group"]):
            if g not in per:
                raise row_error(df, idx, f"group '{g}' is not in {source.attrs.get('manifest')}")
            values.append(per[g][i])
        out[c] = values
    return out


def split_summary(out: pd.DataFrame, source: pd.DataFrame | None, class_column: str = "label",
                  count_column: str | None = "particles") -> tuple[pd.DataFrame | None, str]:
    """The per-class table of a split manifest and its title: TEM Table 1 for a split, groups per
    fold for k folds.

    A derived manifest without the class column (patches that inherited their images' split)
    takes each group's class from ``source``. ``(None, "")`` when no class is known.
    """
    frame = out
    if class_column not in frame.columns:
        if source is None or class_column not in source.columns:
            return None, ""
        class_of = dict(zip(group_ids(source), source[class_column]))
        frame = out.assign(**{class_column: group_ids(out).map(class_of)})
    if "split" in frame.columns:
        counted = count_column if count_column in frame.columns else None
        return (split_table(frame, counted, class_column),
                f"split per class (groups = images/patients; {counted or 'rows per group'})")
    gid = group_ids(frame)
    fold = frame["fold"].astype(str)
    if fold.str.isdigit().all():
        fold = fold.astype(int)  # fold 10 after fold 9
    per = gid.groupby([frame[class_column], fold]).nunique().unstack(fill_value=0)
    per.columns = [f"groups_fold_{c}" for c in per.columns]
    per = per.reset_index().rename(columns={class_column: "class"})
    return per, "groups per class and fold"


def split_problems(df: pd.DataFrame) -> list[str]:
    """What ``split check`` reports: unknown split values, then :func:`leakage_problems`.

    Raises
    ------
    ManifestError
        When the manifest has neither a ``split`` nor a ``fold`` column.
    """
    if "split" not in df.columns and "fold" not in df.columns:
        raise ManifestError("has neither a 'split' nor a 'fold' column", df.attrs.get("manifest"), 1)
    unknown = sorted(set(df["split"]) - set(SPLITS) - {""}) if "split" in df.columns else []
    problems = leakage_problems(df)
    if unknown:
        problems.insert(0, f"unknown split value(s): {', '.join(unknown)}")
    return problems


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
    (or from a fold's test part) that exists elsewhere in the manifest. An empty ``group`` cell,
    or an empty ``label`` where others are filled, is a :class:`ManifestError` naming its line; a
    ``label`` column empty throughout is no class at all (the class checks are left out).
    """
    problems = []
    groups = group_ids(df)
    labelled = "label" in df.columns and (df["label"].astype(str).str.strip() != "").any()
    if labelled:
        require_cells(df, "label")
    for col, what in (("split", "splits"), ("fold", "folds' test parts")):
        if col not in df.columns:
            continue
        vals = df[col].astype(str)
        n = vals[vals != ""].groupby(groups[vals != ""]).nunique()
        bad = sorted(n[n > 1].index.astype(str))
        if bad:
            problems.append(f"{len(bad)} group(s) in two {what}: {', '.join(bad[:10])}{' ...' if len(bad) > 10 else ''}")
    if labelled:
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
