"""Measure an image's scale bar: the length in pixels of a solid dark or bright horizontal bar.

SC2-MID "segment[s] the image scale and match[es] it to pixels": the bar is black on a lighter
image (206 px = 100 nm in its Fig. 2, 0.4854 nm/px). covtool finds it as follows:

1. Threshold the extreme intensities: dark = value ≤ min + ``tolerance`` × (max − min), bright =
   value ≥ max − ``tolerance`` × (max − min) (both polarities are tried).
2. Connected components (8-connectivity) of each binary image.
3. Candidates: components at least ``min_length`` px wide whose width / height ≥ ``min_aspect``,
   that fill ≥ ``min_fill`` of their bounding box (a solid bar of near-uniform thickness: a text
   label or a noisy edge does not).
4. The longest candidate wins; among equally long ones (within 1 px) the lowest in the image,
   where scale bars usually sit.

The length is the component's bounding-box width in pixels (end pixels included).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ScaleBar:
    """A found scale bar: ``length_px`` wide, top-left (x, y), ``thickness`` rows, dark or bright."""

    length_px: int
    x: int
    y: int
    thickness: int
    polarity: str

    def pixel_size_nm(self, bar_nm: float) -> float:
        """nm per pixel for a bar that stands for ``bar_nm`` nanometres."""
        return float(bar_nm) / self.length_px


def find_scale_bar(image: np.ndarray, tolerance: float = 0.1, min_aspect: float = 8.0,
                   min_fill: float = 0.9, min_length: int = 10) -> ScaleBar | None:
    """The scale bar of ``image`` (H, W) or (H, W, C), any dtype; ``None`` when there is none."""
    from skimage.measure import label, regionprops

    from covtool.features.texture import to_gray_float

    img = to_gray_float(image)
    lo, hi = float(img.min()), float(img.max())
    if hi <= lo:
        return None
    tol = tolerance * (hi - lo)
    best: tuple | None = None
    for polarity, binary in (("dark", img <= lo + tol), ("bright", img >= hi - tol)):
        for r in regionprops(label(binary, connectivity=2)):
            y0, x0, y1, x1 = r.bbox
            w, h = x1 - x0, y1 - y0
            if w < min_length or w / h < min_aspect or r.area / (w * h) < min_fill:
                continue
            key = (w, y1)
            if best is None or w > best[0][0] + 1 or (w >= best[0][0] - 1 and y1 > best[0][1]):
                best = (key, ScaleBar(int(w), int(x0), int(y0), int(h), polarity))
    return None if best is None else best[1]
