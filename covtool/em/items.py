"""What the EM stages read from an image manifest row: its id, its pixel size, earlier failures."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import pandas as pd

from covtool.core.manifest import row_error
from covtool.core.naming import safe_id


def image_ids(df: pd.DataFrame) -> list[str]:
    """The ``id`` of every row, or a safe id from the image file's stem where ``id`` is absent/empty.

    Ids name the output files, so duplicates are an error naming the second row.
    """
    has_id = "id" in df.columns
    ids = []
    seen: dict[str, object] = {}
    for idx in df.index:
        given = str(df.at[idx, "id"]).strip() if has_id else ""
        iid = safe_id(given) if given else safe_id(Path(str(df.at[idx, "path"])).stem)
        if iid in seen:
            raise row_error(df, idx, f"duplicate image id '{iid}' (give an 'id' column to tell them apart)")
        seen[iid] = idx
        ids.append(iid)
    return ids


def pixel_size(df: pd.DataFrame, idx, default: float | None = None, column: str = "pixel_size_nm") -> float:
    """The row's pixel size in nm, or ``default`` where the cell is empty or the column missing.

    Raises a :class:`ManifestError` naming the manifest line when it is missing, not a number,
    or not positive.
    """
    raw = str(df.at[idx, column]).strip() if column in df.columns else ""
    if raw in ("", "nan"):
        if default is None:
            raise row_error(df, idx, f"missing pixel size: no value in '{column}' "
                                     "(give the column or a default pixel size)")
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        raise row_error(df, idx, f"pixel size '{raw}' in '{column}' is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise row_error(df, idx, f"pixel size {raw} nm in '{column}' must be positive")
    return value


def failed_rows(df: pd.DataFrame) -> pd.Series:
    """True for rows an earlier stage marked failed (a non-empty ``error``); they pass unchanged."""
    if "error" not in df.columns:
        return pd.Series(False, index=df.index)
    return df["error"].fillna("").astype(str).str.strip().ne("")


def source_name(df: pd.DataFrame, idx) -> str:
    """The row's ``source`` when it has one, else its image's file name."""
    if "source" in df.columns:
        s = str(df.at[idx, "source"]).strip()
        if s and s != "nan":
            return s
    return Path(str(df.at[idx, "path"])).name



def remove_files(paths: list[Path]) -> None:
    """Take back the files a stage wrote before it stopped on an error (no partial outputs)."""
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            Path(p).unlink()
