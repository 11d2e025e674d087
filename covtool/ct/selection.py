"""The COVID-CTset slice selection algorithm (Rahimzadeh et al., section 2.2).

At the two ends of a CT series the lungs are closed; a classifier trained on open-lung slices
fails there. Per series, the algorithm counts the *dark pixels* (value below 300 in the 16-bit
stored units) inside a region at the middle of the lungs, sets the threshold to
``(max count - min count) / 1.5`` over the series and keeps the slices whose count is strictly
greater than the threshold.

Region convention, as in the authors' code: ``pixel[240:340, 120:370]``, i.e. rows 240..339 and
columns 120..369 (half-open), given here as ``(x0, y0, x1, y1) = (120, 240, 370, 340)`` for a
512x512 slice. Slices of another size get the region scaled by ``width/512`` and ``height/512``
(rounded to whole pixels), so it covers the same part of the field of view.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from covtool.core.errors import ParameterError

REFERENCE_SIZE = 512
DEFAULT_REGION: tuple[int, int, int, int] = (120, 240, 370, 340)
DEFAULT_DARK_LEVEL = 300
DEFAULT_DIVISOR = 1.5


def parse_region(text: str) -> tuple[int, int, int, int]:
    """``"X0,Y0,X1,Y1"`` (the 512x512 frame, half-open) as four whole numbers.

    Raises
    ------
    ParameterError
        For ``region``: not four whole numbers, or not ``0 <= X0 < X1`` and ``0 <= Y0 < Y1``.
    """
    parts = [p.strip() for p in text.split(",")]
    try:
        x0, y0, x1, y1 = (int(p) for p in parts)
    except ValueError:
        raise ParameterError("region", f"expects four whole numbers X0,Y0,X1,Y1, got {text!r}") from None
    if not (0 <= x0 < x1 and 0 <= y0 < y1):
        raise ParameterError("region", f"{text}: need 0 <= X0 < X1 and 0 <= Y0 < Y1")
    return x0, y0, x1, y1


def _raise(exc: Exception):
    raise exc


def scaled_region(shape: tuple[int, ...], region: Sequence[int] = DEFAULT_REGION,
                  reference: int = REFERENCE_SIZE) -> tuple[int, int, int, int]:
    """The region ``(x0, y0, x1, y1)`` for a slice of ``shape`` (H, W), scaled from 512x512.

    Parameters
    ----------
    shape : tuple
        ``(H, W)`` of the slice.
    region : sequence of 4 ints
        ``(x0, y0, x1, y1)`` in the 512x512 frame, half-open.
    """
    h, w = int(shape[0]), int(shape[1])
    x0, y0, x1, y1 = (int(v) for v in region)
    if not (0 <= x0 < x1 and 0 <= y0 < y1):
        _raise(ValueError(f"region {tuple(region)} must satisfy 0 <= x0 < x1 and 0 <= y0 < y1"))
    if (h, w) != (reference, reference):
        sx, sy = w / reference, h / reference
        x0, x1 = int(round(x0 * sx)), int(round(x1 * sx))
        y0, y1 = int(round(y0 * sy)), int(round(y1 * sy))
        x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
    if x1 > w or y1 > h:
        _raise(ValueError(f"region {(x0, y0, x1, y1)} reaches outside a {w}x{h} slice"))
    return x0, y0, x1, y1


def dark_pixel_count(img: np.ndarray, region: Sequence[int] = DEFAULT_REGION,
                     dark_level: float = DEFAULT_DARK_LEVEL) -> int:
    """Number of pixels below ``dark_level`` inside the (scaled) region.

    Parameters
    ----------
    img : ndarray (H, W), uint16 (or any real dtype)
        One CT slice in stored units.
    """
    if img.ndim != 2:
        _raise(ValueError(f"expected a single-channel slice (H, W), got shape {img.shape}"))
    x0, y0, x1, y1 = scaled_region(img.shape, region)
    return int(np.count_nonzero(img[y0:y1, x0:x1] < dark_level))


def dark_pixel_counts(slices: Iterable[np.ndarray], region: Sequence[int] = DEFAULT_REGION,
                      dark_level: float = DEFAULT_DARK_LEVEL) -> np.ndarray:
    """Counts for a stream of slices; only the counts are kept (one slice in memory at a time)."""
    return np.fromiter((dark_pixel_count(s, region, dark_level) for s in slices), dtype=np.int64)


def series_threshold(counts: Sequence[int] | np.ndarray, divisor: float = DEFAULT_DIVISOR) -> float:
    """``(max - min) / divisor`` over one series' counts."""
    counts = np.asarray(counts)
    if counts.size == 0:
        _raise(ValueError("an empty series has no threshold"))
    if divisor <= 0:
        _raise(ValueError(f"divisor must be positive, got {divisor}"))
    return float(counts.max() - counts.min()) / float(divisor)


@dataclass(frozen=True)
class SeriesSelection:
    counts: np.ndarray      # (n,) int64 dark-pixel counts
    threshold: float
    selected: np.ndarray    # (n,) bool, count > threshold


def select_slices(counts: Sequence[int] | np.ndarray, divisor: float = DEFAULT_DIVISOR) -> SeriesSelection:
    """Apply the paper's rule: a slice is kept when its count is strictly above the threshold.

    A series whose counts are all equal has threshold 0, so its slices are kept exactly when they
    have any dark pixel at all (the rule taken literally; documented in docs/select.md).
    """
    counts = np.asarray(counts, dtype=np.int64)
    threshold = series_threshold(counts, divisor)
    return SeriesSelection(counts, threshold, counts > threshold)
