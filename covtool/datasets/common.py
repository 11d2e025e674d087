"""What every dataset reader shares: the result type, the tally of removed items, table helpers.

A reader walks a dataset in its authors' own layout and returns an :class:`Ingested`: the
manifest rows (a DataFrame in covtool's schema) and, per reason, how many items it removed.
Nothing is dropped silently: a filter counts what it removes; a bad file (unknown, unreadable,
missing, contradicting its tables) either stops the reader with a one-line error naming the file
or, with ``skip_bad``, is counted under its reason and listed in :attr:`Ingested.problems`.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from covtool.core.errors import CovtoolError, ManifestError
from covtool.core.imageio import read_image
from covtool.core.manifest import order_columns, parse_manifest


class DatasetError(CovtoolError):
    """A file of a public dataset that is unknown, damaged, missing or contradicts its tables."""


def dataset_folder(root: str | os.PathLike) -> Path:
    """``root`` as the dataset's folder, or a :class:`DatasetError` naming it: missing, or a file
    (an archive not unpacked, one of the release's files given for its folder)."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise DatasetError("is a file, expected the dataset folder", root)
    if not root.is_dir():
        raise DatasetError("no such dataset folder", root)
    return root


def require_items(result: Ingested, root: str | os.PathLike) -> Ingested:
    """``result`` when it holds an item, else a :class:`DatasetError` naming ``root``: an empty
    manifest would let the next stage "succeed" on nothing, far from the cause (a mistyped
    folder, a filter or ``--part`` that removes everything, every file bad under --skip-bad)."""
    if len(result.items):
        return result
    if not result.removed:
        raise DatasetError("no item found in the dataset folder", root)
    reasons = sorted(result.removed.items(), key=lambda kv: -kv[1])
    shown = "; ".join(f"{n} {reason}" for reason, n in reasons[:3]) + ("; ..." if len(reasons) > 3 else "")
    raise DatasetError(f"no item left: {sum(result.removed.values())} removed ({shown})", root)


@dataclass
class Ingested:
    """A reader's result.

    Attributes
    ----------
    items : DataFrame
        One row per item, covtool's columns first (``id, path, label, group, split, fold,
        source``), paths absolute.
    removed : Counter
        Items removed, per reason (filters and bad files alike).
    problems : list of (str, str)
        ``(file[:line], reason)`` of every bad file skipped.
    warnings : list of str
        Things the user must know that removed nothing (printed on stderr, even with --quiet).
    """

    items: pd.DataFrame
    removed: Counter = field(default_factory=Counter)
    problems: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Tally:
    """Counts removals; raises on the first bad file unless ``skip_bad``."""

    def __init__(self, skip_bad: bool = False):
        self.skip_bad = skip_bad
        self.removed: Counter = Counter()
        self.problems: list[tuple[str, str]] = []
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        """A warning for the summary: nothing is removed."""
        self.warnings.append(message)

    def drop(self, reason: str, n: int = 1) -> None:
        """Count ``n`` items removed on purpose (a filter)."""
        if n:
            self.removed[reason] += n

    def bad(self, path: str | os.PathLike, reason: str, detail: str = "", line: int | None = None) -> None:
        """A bad file: raise :class:`DatasetError`, or count it and go on under ``skip_bad``."""
        message = f"{reason}: {detail}" if detail else reason
        if not self.skip_bad:
            raise DatasetError(message, path, line)
        self.removed[reason] += 1
        self.problems.append((f"{path}:{line}" if line is not None else str(path), message))

    def result(self, rows: list[dict], columns: Sequence[str] = ()) -> Ingested:
        df = pd.DataFrame(rows)
        for c in columns:
            if c not in df.columns:
                df[c] = pd.Series(dtype=object)
        return Ingested(order_columns(df), self.removed, self.problems, self.warnings)


#: Bad files of one reason listed in a summary before the rest are only counted.
PROBLEMS_LISTED = 5


def problem_lines(result: Ingested, limit: int | None = PROBLEMS_LISTED) -> list[str]:
    """The summary's lines about skipped bad files: per reason the first ``limit`` named, then
    one line counting the rest (``None``: every one), so 600 missing images take 6 lines."""
    by_reason: dict[str, list[str]] = {}
    reasons = sorted(result.removed, key=len, reverse=True)  # the longest reason that prefixes
    for where, why in result.problems:
        reason = next((r for r in reasons if why == r or why.startswith(r + ": ")), why)
        by_reason.setdefault(reason, []).append(f"skipped {where}: {why}")
    lines = []
    for reason, items in by_reason.items():
        shown = items if limit is None else items[:limit]
        lines += shown
        if len(items) > len(shown):
            lines.append(f"... and {len(items) - len(shown)} more skipped: {reason} "
                         f"({len(items)} in all; --debug lists every one)")
    return lines


def check_image(path: Path, tally: Tally) -> bool:
    """Decode an image once; a damaged one is a bad file (reason ``unreadable image``)."""
    try:
        read_image(path)
    except CovtoolError as exc:
        tally.bad(path, "unreadable image", exc.message)
        return False
    return True


def column_key(name: str) -> str:
    """A table's column name as a manifest column: ``"Patient ID"`` -> ``patient_id``."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")


def find_column(columns: Iterable[str], *candidates: str) -> str | None:
    """The first column whose :func:`column_key` equals one of ``candidates`` (as keys)."""
    keys = {column_key(c): c for c in columns}
    for cand in candidates:
        if column_key(cand) in keys:
            return keys[column_key(cand)]
    return None


#: pandas' name for a column whose header cell is blank (what a re-saved table's header holds).
UNNAMED = re.compile(r"^Unnamed: \d+$")


def read_table(path: Path, *, last_column: str | None = None) -> pd.DataFrame:
    """A CSV (all values text, index = line numbers) or an Excel sheet (the first; index = row).

    Columns without a name (a blank header cell, or pandas' ``Unnamed: N``), as exports leave
    them, are taken apart from the data, never guessed at:

    * empty on every row: dropped (a comma at the end of every line);
    * the first column, holding a running index (0, 1, 2, ... or 1, 2, 3, ... in row order):
      dropped (a pandas index written with the table);
    * the last column, where the caller knows it as part of the table's schema: kept under
      the name ``last_column``;
    * else a :class:`ManifestError` naming the file and the first line with data in it.

    ``attrs["manifest"]`` names the file, so :func:`covtool.core.manifest.row_error` can cite
    ``file:line``.
    """
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls"):
        try:
            df = pd.read_excel(path, dtype=str, keep_default_na=False)
        except ImportError:
            raise ManifestError("reading Excel tables needs openpyxl (pip install openpyxl), "
                                "or save the sheet as CSV beside it", path) from None
        except Exception as exc:  # openpyxl raises many types for damaged workbooks
            raise ManifestError(f"unreadable Excel table ({type(exc).__name__}: {exc})", path) from None
        df = df.astype(object).fillna("")
        df.columns = [str(c).strip() for c in df.columns]
        df.index = pd.RangeIndex(2, len(df) + 2)  # sheet row numbers (row 1 = header)
        df.attrs["manifest"] = str(path)
    else:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            text = path.read_text(encoding="latin-1")  # older exports of the metadata tables
        df = parse_manifest(text, str(path), unnamed="Unnamed: {}")
    return _unnamed_columns(df, path, last_column)


def _unnamed_columns(df: pd.DataFrame, path: Path, last_column: str | None) -> pd.DataFrame:
    """Drop, name or refuse the columns without a name (see :func:`read_table`)."""
    columns = list(df.columns)
    drop, rename = [], {}
    for pos, col in enumerate(columns):
        if not UNNAMED.match(str(col)):
            continue
        values = df[col].astype(str).str.strip()
        full = values[values != ""]
        if full.empty or (pos == 0 and _running_index(values)):
            drop.append(col)
        elif pos == len(columns) - 1 and last_column:
            if last_column in columns:
                raise ManifestError(f"duplicate column {last_column} (the name given to the "
                                    "unnamed last column)", path, 1)
            rename[col] = last_column
        else:
            value = full.iloc[0] if len(full.iloc[0]) <= 40 else full.iloc[0][:37] + "..."
            raise ManifestError(f"column {pos + 1} has no name but holds data ('{value}')",
                                path, int(full.index[0]))
    if not drop and not rename:
        return df
    out = df.drop(columns=drop).rename(columns=rename)
    out.attrs.update(df.attrs)
    return out


def _running_index(values: pd.Series) -> bool:
    """Whether ``values`` read 0, 1, 2, ... or 1, 2, 3, ... in row order."""
    texts = list(values)
    return any(texts == [str(i) for i in range(start, start + len(texts))] for start in (0, 1))


def find_files(root: Path, names: Sequence[str], max_depth: int = 3) -> list[Path]:
    """Files under ``root`` (to ``max_depth`` folders down) whose name is one of ``names``
    (case-insensitive), shallowest first."""
    wanted = {n.lower() for n in names}
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if depth < max_depth else []
        found += [Path(dirpath) / f for f in sorted(filenames) if f.lower() in wanted]
    return sorted(found, key=lambda p: (len(p.relative_to(root).parts), str(p)))


def split_name(text: str) -> str | None:
    """``train``/``val``/``test`` for the datasets' spellings (training, validation, valid...)."""
    t = text.strip().lower()
    if t in ("train", "training"):
        return "train"
    if t in ("val", "valid", "validation"):
        return "val"
    if t in ("test", "testing"):
        return "test"
    return None


def crossing_groups(df: pd.DataFrame) -> list[str]:
    """Groups whose items lie in more than one split (a leak between train/val/test)."""
    if df.empty or "split" not in df.columns or "group" not in df.columns:
        return []
    sub = df[(df["split"].fillna("") != "") & (df["group"].fillna("") != "")]
    n = sub.groupby("group")["split"].nunique()
    return sorted(n[n > 1].index.astype(str))
