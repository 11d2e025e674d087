"""Class balancing of the training patches by the 8 symmetries of the square.

The TEM virus benchmark "augmented the training set image patches by flipping and multiple 90
degrees rotations so that each class contains 736 input samples. Those classes that originally
contained more than 736 patches were randomly reduced to this number."

covtool applies the transforms **at load time**: a balanced manifest row points at the original
patch file and names its transform in the ``transform`` column; :func:`apply_transform` (pure
numpy; ``tf.image.flip_left_right`` then ``tf.image.rot90`` do the same in TensorFlow) gives the
pixels. No pixel is duplicated on disk.

Transform names are :mod:`covtool.core.symmetry`'s canonical ones, as balance has always written
them: ``rot90_k{k}`` rotates by ``k`` quarter turns counter-clockwise (``np.rot90(img, k)``);
``flip_rot90_k{k}`` first mirrors left-right (``np.fliplr``), then rotates. ``rot90_k0`` is the
identity. Together they are the dihedral group D4.

Choice of augmentations for a class with ``n < per_class`` patches: all originals are kept, and
``per_class - n`` augmented copies are added in rounds: every patch gets its own random order of
the 7 non-identity transforms, and round ``r`` gives patches (in a random order) their ``r``-th
transform. So no patch is augmented twice before every patch has been augmented once, and no
(patch, transform) pair repeats while ``per_class <= 8 n``. Beyond that the rounds start again
(repeats are unavoidable; a warning says so).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from covtool.core.errors import ParameterError
from covtool.core.symmetry import IDENTITY, SYMMETRIES, apply_symmetry, parse_symmetry

DEFAULT_PER_CLASS = 736
#: the names balance writes, identity first (:data:`covtool.core.symmetry.SYMMETRIES`)
TRANSFORMS: tuple[str, ...] = SYMMETRIES
#: earlier names of the one parser and its application, kept importable
parse_transform = parse_symmetry
apply_transform = apply_symmetry
__all__ = ["DEFAULT_PER_CLASS", "IDENTITY", "TRANSFORMS", "BalanceResult", "apply_transform",
           "balance_manifest", "class_rng", "parse_transform", "plan_class"]


@dataclass
class BalanceResult:
    manifest: pd.DataFrame
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # label -> (before, after)
    repeated: dict[str, int] = field(default_factory=dict)            # label -> repeated pairs


def plan_class(n: int, per_class: int, rng: np.random.Generator) -> list[tuple[int, str, int]]:
    """Which patches of one class to use, and how: ``(position, transform, round)`` triples.

    ``position`` indexes the class's ``n`` patches in their input order; ``round`` is 0 for an
    original, ``r >= 1`` for the augmentation round (rounds past 7 repeat pairs). A ``per_class``
    below 1 is a :class:`~covtool.core.errors.ParameterError`.
    """
    _check_per_class(per_class)
    if n == 0:
        return []
    if n >= per_class:
        keep = np.sort(rng.choice(n, size=per_class, replace=False))
        return [(int(i), IDENTITY, 0) for i in keep]
    plan = [(i, IDENTITY, 0) for i in range(n)]
    orders = np.array([rng.permutation(7) + 1 for _ in range(n)])  # indices into TRANSFORMS[1:]
    need = per_class - n
    r = 0
    while need > 0:
        order = rng.permutation(n)
        take = order[:need]
        col = r % 7
        for i in sorted(take.tolist()):
            plan.append((i, TRANSFORMS[orders[i, col]], r + 1))
        need -= len(take)
        r += 1
    return plan


def _check_per_class(per_class: int) -> None:
    if per_class < 1:
        raise ParameterError("per_class", f"must be at least 1, got {per_class}")


def class_rng(seed: int, label: str) -> np.random.Generator:
    """One generator per class, so adding a class does not change the others' draws."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(str(label).encode("utf-8"))])


def balance_manifest(df: pd.DataFrame, per_class: int = DEFAULT_PER_CLASS, seed: int = 0,
                     split: str = "train", id_column: str = "id") -> BalanceResult:
    """Balance the ``split`` rows of a patch manifest; other rows pass unchanged.

    Parameters
    ----------
    df : DataFrame
        Rows with ``id``, ``label`` and ``split`` (text values, as read from a manifest). Rows with
        a non-empty ``error`` are left out of the counts and passed through.

    Returns
    -------
    BalanceResult
        ``manifest``: the balanced rows of ``split`` class by class (labels sorted), then every
        other row in input order; columns ``transform`` (a name of :data:`TRANSFORMS`; the
        identity for untouched rows; empty for error rows) and ``augmented_from`` (the original
        row's id for an augmented copy, else empty). Augmented ids are ``<id>_<transform>`` (with
        ``_r<round>`` when a pair repeats).
    """
    _check_per_class(per_class)
    has_error = "error" in df.columns
    bad = df["error"].astype(str).str.strip().ne("") if has_error else pd.Series(False, index=df.index)
    in_split = df["split"].astype(str).str.strip().eq(split) & ~bad
    pool = df[in_split]
    rows: list[dict] = []
    result = BalanceResult(pd.DataFrame())
    for label in sorted(pool["label"].astype(str).unique()):
        members = pool[pool["label"].astype(str) == label]
        plan = plan_class(len(members), per_class, class_rng(seed, label))
        records = members.to_dict("records")
        for pos, name, rnd in plan:
            rec = dict(records[pos])
            rec["transform"] = name
            rec["augmented_from"] = ""
            if rnd > 0:
                rec["augmented_from"] = rec[id_column]
                suffix = f"_{name}" + (f"_r{(rnd - 1) // 7 + 1}" if rnd > 7 else "")
                rec[id_column] = f"{rec[id_column]}{suffix}"
            rows.append(rec)
        result.counts[label] = (len(members), len(plan))
        if len(plan) > 8 * len(members):
            result.repeated[label] = len(plan) - 8 * len(members)
    for rec, is_bad in zip(df[~in_split].to_dict("records"), bad[~in_split]):
        rec["transform"] = "" if is_bad else IDENTITY
        rec["augmented_from"] = ""
        rows.append(rec)
    cols = [c for c in df.columns] + [c for c in ("transform", "augmented_from") if c not in df.columns]
    result.manifest = pd.DataFrame(rows, columns=cols)
    return result

