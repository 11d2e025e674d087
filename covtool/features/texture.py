"""SC2-MID texture features over an object's bounding region: HOG (36) and GLCM (16).

The region is the bounding box of the object's mask in the image. The paper extracts texture "by
combining the GT and original images", so by default pixels outside the mask are set to 0 after
quantisation (``masked=False`` keeps the whole box).

* 8-bit quantisation: the region's grey values are stretched linearly from its own minimum and
  maximum (over the mask's pixels when masked) to 0..255 and rounded; a flat region becomes 0.
* HOG (skimage ``hog``): the 8-bit region resized to 64×64 (OpenCV ``INTER_AREA``), then
  ``orientations=9, pixels_per_cell=(32, 32), cells_per_block=(1, 1), block_norm="L2-Hys"`` —
  2×2 cells = 4 blocks × 9 orientations = the paper's 36-dimensional vector, whatever the size
  of the object.
* GLCM (skimage ``graycomatrix``/``graycoprops``): ``distances=[1]``, angles 0°, 45°, 90°, 135°,
  256 levels, ``symmetric=True, normed=True``; ``glcm_1..4`` contrast, ``glcm_5..8``
  homogeneity, ``glcm_9..12`` correlation, ``glcm_13..16`` energy, each at the four angles in
  that order.
"""

from __future__ import annotations

import numpy as np

HOG_SIZE = 64
HOG_PARAMS: dict = {"orientations": 9, "pixels_per_cell": (32, 32), "cells_per_block": (1, 1),
                    "block_norm": "L2-Hys", "feature_vector": True}
GLCM_ANGLES: tuple[float, ...] = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)
GLCM_PROPS: tuple[str, ...] = ("contrast", "homogeneity", "correlation", "energy")
HOG_COLUMNS: list[str] = [f"hog_{i}" for i in range(1, 37)]
GLCM_COLUMNS: list[str] = [f"glcm_{i}" for i in range(1, 17)]


def to_gray_float(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) of any dtype → (H, W) float64 by covtool's one grey conversion
    (:func:`covtool.core.imageio.to_grey`: alpha composited on black, a grey image's own values,
    BT.601 luma for colour), the one the training pipeline feeds a grey model."""
    from covtool.core.imageio import to_grey

    return np.asarray(to_grey(np.asarray(image)), dtype=np.float64)


def quantize_8bit(values: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """Stretch ``values`` linearly from their min..max (over ``where`` if given) to uint8 0..255."""
    v = np.asarray(values, dtype=np.float64)
    ref = v[where] if where is not None else v
    lo, hi = float(ref.min()), float(ref.max())
    if hi <= lo:
        return np.zeros(v.shape, np.uint8)
    return np.clip(np.rint((v - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def object_region(image: np.ndarray, mask: np.ndarray, masked: bool = True) -> np.ndarray:
    """The object's bounding region of ``image`` as uint8 (H', W').

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C), any dtype
    mask : ndarray (H, W), bool
        The object; its bounding box is the region.
    masked : bool
        Set pixels outside the mask to 0 (the paper's "combining GT and original images").
    """
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        raise ValueError("empty mask (no foreground pixel)")
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    region, inside = to_gray_float(image)[box], m[box]
    if not masked:
        return quantize_8bit(region)
    q = quantize_8bit(region, inside)
    q[~inside] = 0
    return q


def hog_features(region: np.ndarray) -> np.ndarray:
    """The 36-dimensional HOG vector of a uint8 region: float64 (36,)."""
    import cv2
    from skimage.feature import hog

    small = cv2.resize(np.ascontiguousarray(region), (HOG_SIZE, HOG_SIZE), interpolation=cv2.INTER_AREA)
    return np.asarray(hog(small, **HOG_PARAMS), dtype=np.float64)


def glcm_features(region: np.ndarray) -> np.ndarray:
    """GLCM contrast, homogeneity, correlation, energy × 4 angles of a uint8 region: float64 (16,)."""
    from skimage.feature import graycomatrix, graycoprops

    glcm = graycomatrix(region, distances=[1], angles=list(GLCM_ANGLES), levels=256, symmetric=True, normed=True)
    return np.concatenate([graycoprops(glcm, p)[0] for p in GLCM_PROPS]).astype(np.float64)


def texture_features(image: np.ndarray, mask: np.ndarray, masked: bool = True) -> dict[str, float]:
    """``hog_1..36`` and ``glcm_1..16`` of the object ``mask`` in ``image``."""
    region = object_region(image, mask, masked)
    out = {c: float(v) for c, v in zip(HOG_COLUMNS, hog_features(region))}
    out.update({c: float(v) for c, v in zip(GLCM_COLUMNS, glcm_features(region))})
    return out
