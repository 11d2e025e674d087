"""COVID-CT's chest crop: threshold segmentation and convex hull detection (Zhao et al. 2020).

The paper: "We automatically crop the chest position in images through threshold segmentation
and convex hull detection, which gets rid of white space at the edge of images" (applied to its
validation and test images, original CTs from hospital archives). It gives no threshold, no
connectivity and no margin; covtool's choices (docs/chest-crop.md gives their reasons):

1. **grey** -- the image as one channel (:func:`covtool.core.imageio.to_grey`: alpha composited
   on black, colour as luma), linearly mapped to 0..255 where it is not 8-bit;
2. **white space** -- whole rows and columns at each edge that are near-white (at least
   ``255 - white_tolerance``) and end in a straight edge (:func:`white_bands`): a page's or a
   viewer's margin, trimmed; a lung-window CT's saturated soft tissue reaching the edge is not
   trimmed (it ends along the body's curve);
3. **threshold segmentation** -- the air's threshold (:func:`air_threshold`, the lower threshold
   of a three-class Otsu) on the rest: the body (tissue, fat included) is the pixels above it;
   the air around the body and black borders fall below;
4. **the body** -- after a 3x3 opening (which cuts 1-2 pixel lines: frame lines, arrows, text
   strokes touching the body), the 8-connected components of at least ``keep_fraction`` of the
   largest one's area (both arms beside the chest, two lungs cut apart by the frame);
5. **convex hull** of the body's pixels (OpenCV), and its bounding box, widened by ``margin``
   pixels on every side and clipped to the image.

The box of a convex hull is the box of the pixels it encloses: the hull is what the paper names,
and it is recorded (its area) so a caller can check it; the crop itself is the box. Everything
here is arrays in, numbers out (no files): :mod:`covtool.ct.chestcrop_stage` reads and writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from covtool.core.errors import ParameterError

#: Near-white (0..255 scale) at or above ``255 - WHITE_TOLERANCE``: a page margin's JPEG noise.
WHITE_TOLERANCE = 16
#: A white band's lines are at least this fraction near-white ...
BAND_FULL = 0.98
#: ... and the first line after it less than this (a straight edge, not a body's curve).
BAND_EDGE = 0.5
#: Components of at least this fraction of the largest one's area are part of the body.
KEEP_FRACTION = 0.05


@dataclass(frozen=True)
class ChestBox:
    """Where the chest is in one image.

    Attributes
    ----------
    box : (int, int, int, int)
        ``x0, y0, x1, y1`` in source pixels, ``x1``/``y1`` exclusive (``img[y0:y1, x0:x1]``).
    threshold : float
        The air's threshold (:func:`air_threshold`), on the 0..255 grey scale.
    body : ndarray (H, W), bool
        The body's pixels (the kept components).
    hull_area : float
        Area of the body's convex hull, in pixels.
    """

    box: tuple[int, int, int, int]
    threshold: float
    body: np.ndarray
    hull_area: float

    @property
    def text(self) -> str:
        """The box as a manifest cell: ``x0,y0,x1,y1``."""
        return ",".join(str(v) for v in self.box)


def check_options(margin: int = 0, white_tolerance: int = WHITE_TOLERANCE,
                  keep_fraction: float = KEEP_FRACTION) -> None:
    """Raise :class:`ParameterError` for an option that cannot work (before any image is read)."""
    if isinstance(margin, bool) or not isinstance(margin, (int, np.integer)) or margin < 0:
        raise ParameterError("margin", f"must be a whole number of pixels >= 0, got {margin!r}")
    if not 0 <= white_tolerance <= 254:
        raise ParameterError("white_tolerance", f"must be 0..254 grey levels, got {white_tolerance!r}")
    if not 0 < keep_fraction <= 1:
        raise ParameterError("keep_fraction", f"must be in (0, 1], got {keep_fraction!r}")


def grey8(img: np.ndarray) -> np.ndarray:
    """Any layout :func:`~covtool.core.imageio.read_image` gives -> (H, W) uint8: 8-bit grey as
    it is, any other dtype mapped linearly from its minimum..maximum to 0..255."""
    from covtool.core.imageio import to_grey

    grey = to_grey(img)
    if grey.dtype == np.uint8:
        return np.ascontiguousarray(grey)
    g = grey.astype(np.float64)
    lo, hi = (float(g.min()), float(g.max())) if g.size else (0.0, 0.0)
    if hi <= lo:
        return np.zeros(g.shape, np.uint8)
    return np.clip(np.rint((g - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def white_bands(grey: np.ndarray, tolerance: int = WHITE_TOLERANCE) -> tuple[int, int, int, int]:
    """The white space at each edge of a uint8 grey image: ``top, bottom, left, right`` rows or
    columns to trim.

    A band is the run of whole rows (columns) from an edge inward in which at least
    :data:`BAND_FULL` of the pixels are near-white (``>= 255 - tolerance``), and it counts only
    where it ends sharply: the first line after it is less than :data:`BAND_EDGE` near-white (the
    picture's straight edge). A lung-window CT whose saturated soft tissue reaches the edge
    fades out along the body's curve instead, so its tissue is never taken for white space.
    """
    white = grey >= 255 - tolerance
    out = []
    for lines in (white, white[::-1], white.T, white.T[::-1]):
        fraction = lines.mean(axis=1) if lines.size else np.zeros(len(lines))
        k = 0
        while k < len(fraction) and fraction[k] >= BAND_FULL:
            k += 1
        out.append(k if k == len(fraction) or fraction[k] < BAND_EDGE else 0)
    return out[0], out[1], out[2], out[3]


def air_threshold(grey: np.ndarray) -> float:
    """The grey level between the air and the body: Otsu's threshold of the pixels at or below
    Otsu's threshold of the whole image (the lower threshold of a three-class Otsu).

    One Otsu threshold splits the image's two largest modes: in a lung window, air and lungs
    from tissue (right), but in a mediastinal window, air, lungs *and fat* from muscle, vessels
    and bone, so the body's fat would be cut off. The air is the darkest class in every window
    (-1000 HU is below every window's lower end), so the split of the dark class from the rest
    is taken; the lungs it leaves out lie inside the hull.
    """
    import cv2

    high, _ = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    dark = grey[grey <= high]
    if dark.size == 0 or int(dark.min()) == int(dark.max()):
        return float(high if dark.size == 0 else dark.max())
    low, _ = cv2.threshold(np.ascontiguousarray(dark).reshape(1, -1), 0, 255,
                           cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(low)


def body_mask(grey: np.ndarray, keep_fraction: float = KEEP_FRACTION) -> tuple[np.ndarray, float]:
    """The body's pixels of a uint8 grey image (white space trimmed already) and the air's
    threshold (:func:`air_threshold`; steps 3-4 of the module).

    Returns
    -------
    body : ndarray (H, W), bool
        Empty where nothing is above the threshold (a uniform image).
    threshold : float
    """
    import cv2

    threshold = air_threshold(grey)
    fg = grey > threshold
    fg = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        return np.zeros(grey.shape, bool), float(threshold)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = 1 + np.flatnonzero(areas >= keep_fraction * areas.max())
    return np.isin(labels, keep), float(threshold)


def chest_box(img: np.ndarray, margin: int = 0, white_tolerance: int = WHITE_TOLERANCE,
              keep_fraction: float = KEEP_FRACTION) -> ChestBox | None:
    """The chest's box in an image (see the module docstring), or None where no body is found.

    Parameters
    ----------
    img : ndarray (H, W) or (H, W, C)
        As :func:`~covtool.core.imageio.read_image` gives it (grey, grey+alpha, RGB, RGBA; any dtype).
    margin : int
        Pixels added on every side of the hull's box (clipped to the image).
    white_tolerance : int
        Grey levels below 255 still counted as white space.
    keep_fraction : float
        Components of at least this fraction of the largest one's area belong to the body.
    """
    import cv2

    check_options(margin, white_tolerance, keep_fraction)
    grey = grey8(img)
    height, width = grey.shape
    top, bottom, left, right = white_bands(grey, white_tolerance)
    inner = grey[top:height - bottom, left:width - right]
    body = np.zeros(grey.shape, bool)
    if not inner.size:
        return None
    body[top:height - bottom, left:width - right], threshold = body_mask(inner, keep_fraction)
    points = cv2.findNonZero(body.astype(np.uint8))
    if points is None:
        return None
    hull = cv2.convexHull(points)
    x, y, w, h = cv2.boundingRect(hull)
    box = (max(0, x - margin), max(0, y - margin), min(width, x + w + margin), min(height, y + h + margin))
    return ChestBox(box, threshold, body, float(cv2.contourArea(hull)))
