"""Draw a solid horizontal scale bar on a synthetic microscope image (for scale-bar tests)."""

from __future__ import annotations

import numpy as np


def draw_scale_bar(img: np.ndarray, length_px: int, thickness: int = 6, value: float | None = None,
                   margin: int = 10) -> tuple[np.ndarray, tuple[int, int]]:
    """A copy of ``img`` with a bar ``length_px`` × ``thickness`` in its lower right corner.

    Parameters
    ----------
    img : ndarray (H, W), any integer or float dtype
    length_px, thickness : int
        Bar size in pixels (exact: no anti-aliasing).
    value : float, optional
        The bar's grey value; default the dtype's minimum (a black bar, as in SC2-MID's Fig. 2).
    margin : int
        Distance in pixels from the right and bottom edges.

    Returns
    -------
    (ndarray, (x0, y0))
        The image (same dtype) and the bar's top-left pixel.
    """
    out = np.array(img, copy=True)
    h, w = out.shape[:2]
    if length_px + margin > w or thickness + margin > h:
        raise ValueError(f"a {length_px}x{thickness} bar with margin {margin} does not fit a {w}x{h} image")
    if value is None:
        value = np.iinfo(out.dtype).min if np.issubdtype(out.dtype, np.integer) else 0.0
    x0, y0 = w - margin - length_px, h - margin - thickness
    out[y0:y0 + thickness, x0:x0 + length_px] = value
    return out, (x0, y0)
