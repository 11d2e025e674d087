"""Selection over files: read each slice once, keep only its count, apply the rule per series.

This is the I/O side of :mod:`covtool.ct.selection`, shared by ``covtool select`` and
``covtool patient-diagnose``. One slice is in memory at a time; per series only the counts are
kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from covtool.core.errors import CovtoolError, ImageError, describe
from covtool.core.imageio import is_colour, read_image, to_gray
from covtool.core.naming import safe_id
from covtool.ct.selection import (
    DEFAULT_DARK_LEVEL,
    DEFAULT_DIVISOR,
    DEFAULT_REGION,
    dark_pixel_count,
    select_slices,
)
from covtool.ct.series import Series


@dataclass(frozen=True)
class SelectOptions:
    region: tuple[int, int, int, int] = DEFAULT_REGION
    dark_level: float = DEFAULT_DARK_LEVEL
    divisor: float = DEFAULT_DIVISOR
    skip_bad: bool = False


@dataclass
class SliceResult:
    path: Path
    slice: int                   # 1-based position in the series' natural order
    dark_pixels: int | None = None
    selected: bool = False
    error: str = ""
    row: object = None           # manifest row index, when the series came from a manifest


@dataclass
class SeriesResult:
    series: Series
    slices: list[SliceResult] = field(default_factory=list)
    threshold: float | None = None
    error: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def n_selected(self) -> int:
        return sum(s.selected for s in self.slices)


def load_slice(path: Path) -> np.ndarray:
    """Read one slice as a 2-D array; a colour image is an error (CT slices are grey)."""
    img = read_image(path)
    if img.ndim == 3:
        if img.shape[2] == 1 or not is_colour(img):
            img = to_gray(img)
        else:
            raise ImageError(f"colour image ({img.shape[2]} channels), expected a grey CT slice", path)
    return img


def select_series(series: Series, options: SelectOptions = SelectOptions(),
                  reader: Callable[[Path], np.ndarray] = load_slice,
                  on_slice: Callable[[], None] | None = None,
                  keep: Callable[[SliceResult, np.ndarray], None] | None = None) -> SeriesResult:
    """Count dark pixels in every slice of a series and apply the threshold rule.

    Errors (unreadable file, colour image, size different from the series' first slice, an empty
    series) raise :class:`CovtoolError` naming the file, or, with ``options.skip_bad``, are
    recorded on the slice and the series goes on with its good slices. ``keep`` sees each good
    slice's pixels as it streams past (patient-diagnose uses it); nothing else is retained.
    """
    result = SeriesResult(series)
    if not series.slices:
        where = series.folder if series.folder is not None else f"{series.group}/{series.series}"
        err = CovtoolError("empty series: no image files", where)
        if not options.skip_bad:
            raise err
        result.error = err.message
        return result
    shape = None
    warned_8bit = False
    for i, path in enumerate(series.slices, start=1):
        row = series.rows[i - 1] if series.rows is not None else None
        item = SliceResult(path=path, slice=i, row=row)
        result.slices.append(item)
        try:
            img = reader(path)
            if shape is None:
                shape = img.shape
            elif img.shape != shape:
                raise ImageError(f"slice size {img.shape[1]}x{img.shape[0]} differs from the series' "
                                 f"{shape[1]}x{shape[0]}", path)
            if img.dtype == np.uint8 and not warned_8bit:
                warned_8bit = True
                result.warnings.append(
                    f"{path}: 8-bit image; the dark level ({options.dark_level:g}) assumes 16-bit CT values")
            item.dark_pixels = dark_pixel_count(img, options.region, options.dark_level)
            if keep is not None:
                keep(item, img)
        except CovtoolError as exc:
            if not options.skip_bad:
                raise
            item.error = exc.message
        except ValueError as exc:  # the region does not fit this slice
            if not options.skip_bad:
                raise ImageError(describe(exc), path) from None
            item.error = describe(exc)
        finally:
            if on_slice is not None:
                on_slice()
    good = [s for s in result.slices if s.dark_pixels is not None]
    if not good:
        result.error = "no readable slice in the series"
        return result
    sel = select_slices([s.dark_pixels for s in good], options.divisor)
    result.threshold = sel.threshold
    for s, keep_it in zip(good, sel.selected):
        s.selected = bool(keep_it)
    return result


def slice_id(series: Series, path: Path) -> str:
    """``group_series_stem``, or the file's stem when it already names both (COVID-CTset's files)."""
    stem = path.stem
    if series.group in stem and series.series in stem:
        return safe_id(stem)
    return safe_id(series.group, series.series, stem)


def result_rows(result: SeriesResult) -> Iterator[dict]:
    """Manifest rows for one series (``row`` gives the source manifest row when there is one)."""
    s = result.series
    if not result.slices:
        yield {"id": safe_id(s.group, s.series), "path": str(s.folder or ""), "group": s.group,
               "series": s.series, "slice": None, "dark_pixels": None, "threshold": None,
               "selected": False, "error": result.error, "_row": None}
        return
    for item in result.slices:
        yield {"id": slice_id(s, item.path), "path": str(item.path),
               "group": s.group, "series": s.series, "slice": item.slice,
               "dark_pixels": item.dark_pixels, "threshold": result.threshold,
               "selected": item.selected, "error": item.error or (result.error if item.dark_pixels is None else ""),
               "_row": item.row}


def iter_selection(series_list: Sequence[Series], options: SelectOptions,
                   on_slice: Callable[[], None] | None = None) -> Iterator[SeriesResult]:
    for s in series_list:
        yield select_series(s, options, on_slice=on_slice)
