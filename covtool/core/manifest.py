"""The manifest: covtool's one table format, shared by every stage.

A manifest is a CSV file with a header, one row per item. Stages add columns and rows and pass
through every column they do not know. See ``docs/manifest.md`` for the schema.

Conventions kept here, so that no stage has to think about them:

* ``-`` reads stdin or writes stdout.
* Every value is read as text (``"007"`` stays ``"007"``); stages convert what they use.
* Path columns (:data:`PATH_COLUMNS`) are relative to the manifest's own folder on disk. On
  reading they are resolved to absolute paths; on writing they are made relative to the folder
  of the file written (to the working directory for stdout, which is where a reader of stdin
  resolves them).
* The DataFrame's index is the line number of each row in its source file, so an error about a
  row can name ``file:line`` even after rows were filtered.
* Booleans are written ``true``/``false``; missing values are empty cells.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pandas costs half a second to import: only where a table is built
    import pandas as pd

from covtool.core.atomic import atomic_open, check_writable
from covtool.core.errors import ManifestError

#: Columns whose values are file paths, relative to the manifest's folder.
PATH_COLUMNS: tuple[str, ...] = ("path", "mask", "annotation", "heatmap")

#: Columns of the core schema (docs/manifest.md), in the order covtool writes them first.
CORE_COLUMNS: tuple[str, ...] = ("id", "path", "label", "group", "split", "fold", "source")

STDIO = "-"

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def is_manifest_arg(arg: str) -> bool:
    """True for ``-`` (stdin) and a ``.csv``/``.tsv`` file: a command-line input that is a
    manifest (listing the items), not an item or a folder of items."""
    return arg == STDIO or (Path(arg).suffix.lower() in {".csv", ".tsv"} and not Path(arg).is_dir())


def manifest_name(df: pd.DataFrame) -> str | None:
    return df.attrs.get("manifest")


def row_error(df: pd.DataFrame, index, message: str) -> ManifestError:
    """A :class:`ManifestError` naming the manifest and the row's line."""
    line = int(index) if isinstance(index, (int, np.integer)) else None
    return ManifestError(message, manifest_name(df), line if manifest_name(df) else None)


def row_error_like(df: pd.DataFrame, index) -> int | None:
    """The source line of a row, when ``df`` was read from a named manifest."""
    if manifest_name(df) and isinstance(index, (int, np.integer)):
        return int(index)
    return None


class Row(Mapping[str, str]):
    """One manifest row, read-only, with typed reads that name the row's file and line.

    Cells are text as written; an empty, missing or NaN cell reads as missing everywhere (no
    ``"nan"`` guards in the stages).
    """

    __slots__ = ("_values", "line", "manifest")

    def __init__(self, values: Mapping[str, object], line: int | None = None,
                 manifest: str | None = None):
        self._values = dict(values)
        self.line = line
        self.manifest = manifest

    def __getitem__(self, column: str) -> str:
        return self._values[column]  # the cell as stored; text() and the typed reads interpret it

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        where = f"{self.manifest}:{self.line}" if self.manifest else "row"
        return f"Row({where}, {self._values!r})"

    def raw(self, column: str, default: object = None) -> object:
        """The cell as stored (not stripped), ``default`` where the column is absent."""
        return self._values.get(column, default)

    def text(self, column: str, default: str = "") -> str:
        """The cell, stripped; ``default`` where it is empty, missing or NaN."""
        value = self._values.get(column)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return default
        value = str(value).strip()
        return default if value in ("", "nan") else value

    def has(self, column: str) -> bool:
        """True where the cell holds a value."""
        return self.text(column) != ""

    def number(self, column: str, default: float | None = None, positive: bool = False) -> float:
        """The cell as a finite float (``positive``: above 0); ``default`` where it is empty.

        Raises
        ------
        ManifestError
            Naming the file and line, where the cell is empty without a default, not a number,
            not finite or (with ``positive``) not above 0.
        """
        raw = self.text(column)
        if raw == "":
            if default is None:
                raise self.error(f"empty value in column '{column}'")
            return float(default)
        try:
            value = float(raw)
        except ValueError:
            raise self.error(f"'{raw}' in column '{column}' is not a number") from None
        if not math.isfinite(value) or (positive and value <= 0):
            raise self.error(f"{raw} in column '{column}' must be {'positive' if positive else 'finite'}")
        return value

    def integer(self, column: str, default: int | None = None) -> int:
        """The cell as a whole number (``3`` or ``3.0``); errors as :meth:`number`."""
        value = self.number(column, None if default is None else float(default))
        if not float(value).is_integer():
            raise self.error(f"'{self.text(column)}' in column '{column}' is not a whole number")
        return int(value)

    def flag(self, column: str, default: bool = False) -> bool:
        """The cell as true/false (also 1/0, yes/no); ``default`` where it is empty."""
        raw = self.text(column)
        if raw == "":
            return default
        text = raw.lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise self.error(f"'{raw}' in column '{column}' is not true/false")

    def path(self, column: str = "path") -> Path | None:
        """The cell as a path (absolute where the manifest was read from a file), or None."""
        text = self.text(column)
        return Path(text) if text else None

    @property
    def failed(self) -> str:
        """The error an earlier stage recorded for this row ('' when none)."""
        return self.text("error")

    def error(self, message: str) -> ManifestError:
        """A :class:`ManifestError` naming this row's file and line."""
        return ManifestError(message, self.manifest, self.line if self.manifest else None)


class Table:
    """A manifest read without pandas: its columns, its :class:`Row` views, where it came from."""

    def __init__(self, columns: Sequence[str], rows: list[Row], name: str | None = None,
                 base_dir: Path | None = None):
        self.columns = list(columns)
        self.rows = rows
        self.name = name
        self.base_dir = base_dir

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def error(self, message: str, line: int | None = None) -> ManifestError:
        """A :class:`ManifestError` about the whole manifest (its header: line 1)."""
        return ManifestError(message, self.name, line if self.name else None)

    def require(self, *columns: str) -> None:
        """Refuse a manifest without one of ``columns`` (a data error naming the file)."""
        missing = [c for c in columns if c not in self.columns]
        if missing:
            raise self.error(f"missing column {', '.join(missing)} (columns: {', '.join(self.columns) or 'none'})", 1)

    def frame(self) -> pd.DataFrame:
        """The same manifest as a DataFrame (as :func:`read_manifest` returns it)."""
        df = _frame(self.columns, [[r.raw(c, "") for c in self.columns] for r in self.rows],
                    [r.line if r.line is not None else i + 2 for i, r in enumerate(self.rows)], self.name)
        if self.base_dir is not None:
            df.attrs["base_dir"] = str(self.base_dir)
        return df


def _source_text(source: str | os.PathLike) -> tuple[str, str, Path]:
    """``(text, name, folder)`` of a manifest file or stdin (``-``)."""
    if str(source) == STDIO:
        return sys.stdin.read(), "<stdin>", Path.cwd()
    path = Path(source)
    if not path.exists():
        raise ManifestError("no such manifest", path)
    if path.is_dir():
        raise ManifestError("is a folder, expected a manifest (CSV)", path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"not UTF-8 text (byte {exc.start})", path) from None
    return text, str(path), path.resolve().parent


def read_manifest(source: str | os.PathLike, required: Sequence[str] = (),
                  unique_ids: bool = True) -> pd.DataFrame:
    """Read a manifest from a file or stdin (``-``).

    Parameters
    ----------
    source : str or Path
        The CSV file, or ``-`` for stdin.
    required : sequence of str
        Columns that must be present with a non-empty value in every row.
    unique_ids : bool
        When the manifest has an ``id`` column, refuse duplicated ids.

    Returns
    -------
    DataFrame
        All values as ``str``; index = line numbers in the source; path columns absolute;
        ``attrs["manifest"]`` names the source and ``attrs["base_dir"]`` its folder.
    """
    return read_table(source, required, unique_ids).frame()


def read_table(source: str | os.PathLike, required: Sequence[str] = (),
               unique_ids: bool = True) -> Table:
    """:func:`read_manifest` without pandas: the rows as :class:`Row` views (a stage that reads
    a manifest row by row starts without pandas' half second)."""
    text, name, base = _source_text(source)
    header, cells, lines = _parse(text, name)
    paths = [i for i, c in enumerate(header) if c in PATH_COLUMNS]
    for row in cells:
        for i in paths:
            row[i] = resolve(base, row[i])
    _check(header, cells, lines, name, required, unique_ids)
    return Table(header, [Row(dict(zip(header, r)), line, name) for r, line in zip(cells, lines)],
                 name, base)


def parse_manifest(text: str, name: str = "<manifest>", unnamed: str | None = None) -> pd.DataFrame:
    """Parse manifest text; every value stays a string, the index holds line numbers.

    A blank column name is an error, unless ``unnamed`` gives names for them: a format of the
    column's 0-based position (``"Unnamed: {}"``, as pandas names them); the caller decides.
    """
    header, cells, lines = _parse(text, name, unnamed)
    return _frame(header, cells, lines, name)


def _frame(header: list[str], cells: list[list[str]], lines: list[int], name: str | None) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame(cells, columns=header, dtype=object)
    if not cells:
        df = pd.DataFrame({h: pd.Series(dtype=object) for h in header})
    df.index = pd.Index(lines, dtype="int64", name=None)
    df.attrs["manifest"] = name
    return df


def _parse(text: str, name: str, unnamed: str | None = None) -> tuple[list[str], list[list[str]], list[int]]:
    """The header, the rows' cells and each row's line number (blank lines skipped)."""
    if "\x00" in text:
        raise ManifestError("binary data, expected a CSV manifest", name)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ManifestError("empty manifest (no header line)", name) from None
    except csv.Error as exc:
        raise ManifestError(f"unreadable CSV: {exc}", name, 1) from None
    header = [h.strip() for h in header]
    if not any(header):
        raise ManifestError("empty header line", name, 1)
    if unnamed is not None:
        header = [h or unnamed.format(i) for i, h in enumerate(header)]
    if any(h == "" for h in header):
        raise ManifestError(f"empty column name at position {header.index('') + 1}", name, 1)
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise ManifestError(f"duplicate column {', '.join(dupes)}", name, 1)
    rows, lines = [], []
    start = reader.line_num + 1
    try:
        for row in reader:
            if not row or (len(row) == 1 and row[0].strip() == ""):
                start = reader.line_num + 1
                continue
            if len(row) != len(header):
                raise ManifestError(f"{len(row)} fields where the header has {len(header)}", name, start)
            rows.append(row)
            lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ManifestError(f"unreadable CSV: {exc}", name, start) from None
    return header, rows, lines


def _check(header: Sequence[str], cells: Sequence[Sequence[str]], lines: Sequence[int],
           name: str | None, required: Sequence[str], unique_ids: bool) -> None:
    """Required columns and values, unique ids: the first problem, naming the file and line."""
    missing = [c for c in required if c not in header]
    if missing:
        have = ", ".join(header) or "none"
        raise ManifestError(f"missing column {', '.join(missing)} (columns: {have})", name, 1 if name else None)
    for col in required:
        i = header.index(col)
        for row, line in zip(cells, lines):
            if str(row[i]).strip() == "":
                raise ManifestError(f"empty value in column '{col}'", name, line if name else None)
    if unique_ids and "id" in header:
        i = header.index("id")
        seen: set[str] = set()
        for row, line in zip(cells, lines):
            if row[i] in seen:
                raise ManifestError(f"duplicate id '{row[i]}'", name, line if name else None)
            seen.add(row[i])


def validate(df: pd.DataFrame, required: Sequence[str] = (), unique_ids: bool = True) -> None:
    """Check required columns and values, and unique ids; raise naming the file and line."""
    cols = [str(c) for c in df.columns]
    _check(cols, df[cols].astype(str).to_numpy().tolist() if len(df) else [], list(df.index),
           manifest_name(df), required, unique_ids)


def resolve(base: Path, value) -> str:
    """An absolute path for a manifest path value (empty stays empty)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    value = str(value)
    if value == "":
        return ""
    p = Path(value).expanduser()
    return os.path.normpath(p if p.is_absolute() else (base / p))


def relative_to(base: Path, value) -> str:
    """The path written in a manifest stored in ``base`` (relative, POSIX separators)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or str(value) == "":
        return ""
    p = Path(str(value))
    if not p.is_absolute():
        p = Path.cwd() / p
    try:
        rel = os.path.relpath(p, base)
    except ValueError:  # another drive on Windows
        return p.as_posix()
    return Path(rel).as_posix()


def parse_bool(value, *, where: tuple[pd.DataFrame, object] | None = None, column: str = "") -> bool:
    """``true/false`` (also 1/0, yes/no) as written in manifests."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE or text == "nan":
        return False
    if where is not None:
        raise row_error(where[0], where[1], f"'{value}' in column '{column}' is not true/false")
    raise ValueError(f"not a boolean: {value!r}")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return ""
        # integer-valued floats (counts upcast by a missing value) are written as integers
        if float(value).is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(float(value))
    if isinstance(value, (np.integer,)):
        return str(int(value))
    pd = sys.modules.get("pandas")  # a pandas missing value only where pandas is in use
    if pd is not None and (value is pd.NA or value is pd.NaT):
        return ""
    return str(value)


def to_csv_text(df: pd.DataFrame, base: Path) -> str:
    """Render a manifest as CSV text, with path columns relative to ``base``."""
    return _csv_text([str(c) for c in df.columns], df.itertuples(index=False, name=None), base)


def _csv_text(cols: list[str], rows: Iterable[Sequence], base: Path) -> str:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    path_idx = {i for i, c in enumerate(cols) if c in PATH_COLUMNS}
    for row in rows:
        out = []
        for i, v in enumerate(row):
            cell = _cell(v)
            if i in path_idx and cell:
                cell = relative_to(base, cell)
            out.append(cell)
        writer.writerow(out)
    return buf.getvalue()


def write_manifest(df: pd.DataFrame, dest: str | os.PathLike, force: bool = False) -> None:
    """Write a manifest atomically to a file, or to stdout for ``-``."""
    if str(dest) == STDIO:
        sys.stdout.write(to_csv_text(df, Path.cwd()))
        sys.stdout.flush()
        return
    path = check_writable(dest, force)
    base = path.resolve().parent
    text = to_csv_text(df, base)
    with atomic_open(path, "w", force=force, newline="") as fh:
        fh.write(text)


def write_records(rows: Sequence[dict], columns: Sequence[str], dest: str | os.PathLike,
                  force: bool = False) -> None:
    """Rows of plain Python values (str, int, float, bool, None) written as
    ``write_manifest(new_manifest(rows, columns), ...)`` writes them, without pandas (whose import
    is half of a short command's start-up). A row lacking a column gets an empty cell."""
    cols = [str(c) for c in columns]
    if str(dest) == STDIO:
        sys.stdout.write(_csv_text(cols, ([r.get(c) for c in cols] for r in rows), Path.cwd()))
        sys.stdout.flush()
        return
    path = check_writable(dest, force)
    text = _csv_text(cols, ([r.get(c) for c in cols] for r in rows), path.resolve().parent)
    with atomic_open(path, "w", force=force, newline="") as fh:
        fh.write(text)


def check_output(dest: str | os.PathLike, force: bool = False) -> None:
    """Fail early, before any work, when an output manifest exists and ``force`` is off."""
    if str(dest) != STDIO:
        check_writable(dest, force)


def order_columns(df: pd.DataFrame, first: Iterable[str] = CORE_COLUMNS) -> pd.DataFrame:
    """Put the core columns first (in schema order), then the rest as they were."""
    first = [c for c in first if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]]


def new_manifest(rows: list[dict], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A manifest from row dicts; columns in first-seen order unless given."""
    import pandas as pd

    if columns is None:
        seen: dict[str, None] = {}
        for r in rows:
            for k in r:
                seen.setdefault(k, None)
        columns = list(seen)
    return pd.DataFrame(rows, columns=list(columns))


def merge_manifests(frames: Sequence[pd.DataFrame], key: str = "id") -> pd.DataFrame:
    """Concatenate manifests (e.g. the shards of an array job), refusing duplicated keys.

    Columns are the union, in first-seen order; a row lacking a column gets an empty cell.
    """
    import pandas as pd

    seen: dict[str, tuple[str | None, int]] = {}
    for df in frames:
        if key not in df.columns:
            raise ManifestError(f"missing column {key}", manifest_name(df), 1 if manifest_name(df) else None)
        for idx, value in zip(df.index, df[key]):
            if value in seen:
                first, line = seen[value]
                raise row_error(df, idx, f"duplicate {key} '{value}' (also in {first}:{line})")
            seen[value] = (manifest_name(df), int(idx))
    columns: dict[str, None] = {}
    for df in frames:
        for c in df.columns:
            columns.setdefault(c, None)
    merged = pd.concat([df.reindex(columns=list(columns)) for df in frames], ignore_index=True)
    return merged.fillna("")
