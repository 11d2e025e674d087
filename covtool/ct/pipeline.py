"""Selection over files: read each slice once, keep only its count, apply the rule per series.

This is the I/O side of :mod:`covtool.ct.selection`, shared by ``covtool select`` and
``covtool patient-diagnose``. One slice is in memory at a time; per series only the counts are
kept. Slices of DICOM series and NIfTI volumes come on COVID-CTset's stored scale (HU + 1024,
:mod:`covtool.core.dicom`), so the dark level means the same for every format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from covtool.core.errors import CovtoolError, ImageError, describe
from covtool.core.imageio import is_colour, read_image, to_gray
from covtool.core.naming import safe_id
from covtool.core.scale import check_stored_slice
from covtool.ct.rows import tiff_rows
from covtool.ct.selection import (
    DEFAULT_DARK_LEVEL,
    DEFAULT_DIVISOR,
    DEFAULT_REGION,
    dark_pixel_count,
    scaled_region,
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
    slice: float | int | None    # mm along the normal (DICOM, NIfTI), else the 1-based order
    dark_pixels: int | None = None
    selected: bool = False
    error: str = ""
    row: object = None           # manifest row index, when the series came from a manifest
    index: int | None = None     # the slice's place in its series (``Series.read(index)``)
    slice_index: int | None = None  # NIfTI: index along the file's slice axis
    image: Path | None = None    # the slice as a file of its own, where ``path`` is not one


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


def _region_rows(series: Series, reader, i: int, region) -> tuple[tuple[int, int], np.ndarray] | None:
    """``((H, W), rows)``: only the rows the region covers, where the file lets them be read
    alone (uncompressed TIFF and DICOM); None: read the slice whole. Only the count needs no
    more; ``keep`` (patient-diagnose) needs whole slices."""
    def rows_of(shape):
        _, y0, _, y1 = scaled_region(shape, region)
        return y0, y1

    if series.read is not None:
        rows = getattr(series.read, "rows", None)
        return rows(i, rows_of) if rows is not None else None
    if reader is load_slice:
        return tiff_rows(series.slices[i], rows_of)
    return None


def _series_error(series: Series, options: SelectOptions, result: SeriesResult) -> bool:
    """Bad files and gaps found while the series was put together: raised, or recorded."""
    for k, (path, message) in enumerate(series.bad):
        if not options.skip_bad:
            raise ImageError(message, path)
        row = series.bad_rows[k] if series.bad_rows is not None else None
        result.slices.append(SliceResult(path=path, slice=None, error=message, row=row))
    for i, message in series.problems.items():
        if not options.skip_bad:
            raise ImageError(message, series.slices[i])
    if not series.slices and not series.bad:
        where = series.folder if series.folder is not None else f"{series.group}/{series.series}"
        n = sum(series.left_out.values())
        why = ", ".join(f"{k} {v}" for k, v in sorted(series.left_out.items()))
        err = CovtoolError(f"all {n} image{'s' if n != 1 else ''} left out ({why}): no axial slice "
                           "to select" if n else "empty series: no image files", where)
        if not options.skip_bad:
            raise err
        result.error = err.message
    return bool(series.slices)


def select_series(series: Series, options: SelectOptions = SelectOptions(),
                  reader: Callable[[Path], np.ndarray] = load_slice,
                  on_slice: Callable[[], None] | None = None,
                  keep: Callable[[SliceResult, np.ndarray], None] | None = None) -> SeriesResult:
    """Count dark pixels in every slice of a series and apply the threshold rule.

    Errors (unreadable file, colour image, size different from the series' first slice, an empty
    series, a gap in the slice positions) raise :class:`CovtoolError` naming the file, or, with
    ``options.skip_bad``, are recorded on the slice and the series goes on with its good slices
    (a gap is recorded on the slice after it, which keeps its count). ``keep`` sees each good
    slice's pixels as it streams past (patient-diagnose uses it); nothing else is retained.
    Slices come out in the series' order (anatomical for DICOM and NIfTI); files that could not
    be read at all follow, with ``slice`` empty.
    """
    result = SeriesResult(series, warnings=list(series.warnings))
    if not _series_error(series, options, result):
        result.error = result.error or "no readable slice in the series"
        return result
    bad_rows, result.slices = result.slices, []
    shape = None
    warned_8bit = False
    read = series.read
    try:
        for i, path in enumerate(series.slices):
            row = series.rows[i] if series.rows is not None else None
            item = SliceResult(path=path, slice=series.positions[i] if series.positions is not None else i + 1,
                               row=row, index=i,
                               slice_index=series.slice_index[i] if series.slice_index is not None else None)
            result.slices.append(item)
            try:
                part = None if keep is not None else _region_rows(series, reader, i, options.region)
                if part is not None:
                    img_shape, img = part
                else:
                    img = read(i) if read is not None else reader(path)
                    img_shape = img.shape
                if shape is None:
                    shape = img_shape
                elif img_shape != shape:
                    raise ImageError(f"slice size {img_shape[1]}x{img_shape[0]} differs from the series' "
                                     f"{shape[1]}x{shape[0]}", path)
                if img.dtype == np.uint8 and not warned_8bit:
                    warned_8bit = True
                    result.warnings.append(f"{path}: 8-bit image; the dark level ({options.dark_level:g}) "
                                           "assumes 16-bit CT values")
                check_stored_slice(img, path)
                if part is not None:
                    x0, _, x1, _ = scaled_region(img_shape, options.region)
                    item.dark_pixels = int(np.count_nonzero(img[:, x0:x1] < options.dark_level))
                else:
                    item.dark_pixels = dark_pixel_count(img, options.region, options.dark_level)
                item.error = series.problems.get(i, "")
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
    finally:
        finish = getattr(read, "finish", None)
        if finish is not None:
            result.warnings.extend(finish())
    good = [s for s in result.slices if s.dark_pixels is not None]
    result.slices.extend(bad_rows)
    if not good:
        result.error = "no readable slice in the series"
        return result
    sel = select_slices([s.dark_pixels for s in good], options.divisor)
    result.threshold = sel.threshold
    for s, keep_it in zip(good, sel.selected):
        s.selected = bool(keep_it)
    return result


#: suffixes cut from a file's name in its id (``IM00010.tif`` -> ``IM00010``); any other dot is
#: part of the name (DICOM files named by their SOP Instance UID: ``1.3.12.2.1107.5.1.4.92591``)
ID_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".dcm", ".dicom",
               ".ima")


def file_stem(name: str) -> str:
    """A slice file's name without its image suffix; the whole name where it has none."""
    low = name.lower()
    for suffix in ID_SUFFIXES:
        if low.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _names_series(stem: str, group: str, series: str) -> bool:
    """Whether ``stem`` holds ``<group>_<series>`` (or the group, where the series is named like
    it) as whole ``_``-separated parts: COVID-CTset's ``patient1_SR_2_IM00010``."""
    own = group if group == series else f"{group}_{series}"
    return f"_{own}_" in f"_{stem}_" and stem != own


def slice_id(series: Series, path: Path, slice_index: int | None = None, stem: str | None = None) -> str:
    """``group_series_<file name>`` (the name without its image suffix, ``_<index>`` for a NIfTI
    volume's slice), or the name alone where it already names group and series as whole parts
    (COVID-CTset's files). ``stem`` overrides the name (:func:`result_rows` keeps ids unique)."""
    if slice_index is not None:
        return safe_id(series.group, series.series, f"{slice_index:04d}")
    stem = file_stem(path.name) if stem is None else stem
    if _names_series(stem, series.group, series.series):
        return safe_id(stem)
    return safe_id(series.group, series.series, stem)


def slice_ids(result: SeriesResult) -> list[str]:
    """The ``id`` of each of ``result.slices``, as select and patient-diagnose write them:
    :func:`slice_id`, with a file's whole name where two files of the series share a stem
    (``a.dcm`` and ``a.tif``), so ids stay unique."""
    s = result.series
    stems: dict[str, set[Path]] = {}
    for item in result.slices:
        if item.slice_index is None:
            stems.setdefault(file_stem(item.path.name), set()).add(item.path)
    return [slice_id(s, item.path, item.slice_index,
                     None if item.slice_index is not None or len(stems[file_stem(item.path.name)]) == 1
                     else item.path.name)
            for item in result.slices]


def named(message: str, path: Path | str | None) -> str:
    """An error cell that names its file, as every stage's error rows do (``path: message``),
    so a cell read alone, away from its row, still says which file is bad."""
    if not message or path is None or str(path) in ("", ".") or message.startswith(f"{path}:"):
        return message
    return str(CovtoolError(message, path))


def slice_records(result: SeriesResult) -> list[tuple[SliceResult | None, dict]]:
    """Each slice of ``result`` with its row as select and patient-diagnose write it: ``id``,
    ``path``, ``group``, ``series``, ``slice``, ``dark_pixels``, ``threshold``, ``selected``,
    ``error``, and ``slice_index`` for a NIfTI volume's slices. A series without any slice gives
    one row naming its folder, with the series' error (and None for the slice)."""
    s = result.series
    if not result.slices:
        return [(None, {"id": safe_id(s.group, s.series), "path": str(s.folder or ""),
                        "group": s.group, "series": s.series, "slice": None, "dark_pixels": None,
                        "threshold": None, "selected": False,
                        "error": named(result.error, s.folder)})]
    out = []
    for item, id_ in zip(result.slices, slice_ids(result)):
        row = {"id": id_, "path": str(item.path), "group": s.group, "series": s.series,
               "slice": item.slice, "dark_pixels": item.dark_pixels, "threshold": result.threshold,
               "selected": item.selected,
               "error": (named(item.error, item.path) if item.error
                         else result.error if item.dark_pixels is None else "")}
        if item.slice_index is not None:
            row["slice_index"] = item.slice_index
        out.append((item, row))
    return out


def result_rows(result: SeriesResult) -> Iterator[dict]:
    """The manifest rows of one series (:func:`slice_records` without the slices)."""
    for _, row in slice_records(result):
        yield row


def iter_selection(series_list: Sequence[Series], options: SelectOptions,
                   on_slice: Callable[[], None] | None = None) -> Iterator[SeriesResult]:
    for s in series_list:
        yield select_series(s, options, on_slice=on_slice)
