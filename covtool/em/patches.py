"""Patches centred on annotated virus particles, completed by mirror padding at the border.

The TEM virus benchmark cut 256x256-pixel patches (256x256 nm at 1 nm/px) around "the manually
selected center points for spherical virus particles and all center-line vertices for elongated
virus particles, except for the elongated particles that were annotated with a center-line
composed of only 2 points ... in this case, we selected a new midway point", and used mirror
padding for patches partly outside the image.

Geometry (pixel centres, 0-based): a patch of ``size`` pixels around ``(cx, cy)`` starts at
``x0 = round(cx) - size // 2`` (halves rounded up), so the image pixel nearest the centre lies at
patch column/row ``size // 2``; image pixel ``(x, y)`` is patch pixel ``(x - x0, y - y0)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from covtool.em.annotations import Particle

DEFAULT_SIZE = 256
MIRROR_MODES = ("symmetric", "reflect")


@dataclass(frozen=True)
class PatchCentre:
    """Where one patch goes.

    ``vertex`` is the 0-based vertex of the object (0 for a point); the midpoint of a two-point
    centre line has ``vertex = 0.5`` (halfway between vertices 0 and 1). ``kind`` is ``point``,
    ``vertex`` or ``midpoint``.
    """

    object: int
    vertex: float
    x: float
    y: float
    kind: str


def patch_centres(particles: Sequence[Particle]) -> list[PatchCentre]:
    """The paper's patch centres: a point; every vertex of a line; a two-point line's midpoint."""
    out = []
    for i, p in enumerate(particles):
        v = p.vertices
        if len(v) == 1:
            out.append(PatchCentre(i, 0, float(v[0, 0]), float(v[0, 1]), "point"))
        elif len(v) == 2:
            mid = v.mean(axis=0)
            out.append(PatchCentre(i, 0.5, float(mid[0]), float(mid[1]), "midpoint"))
        else:
            out.extend(PatchCentre(i, k, float(x), float(y), "vertex") for k, (x, y) in enumerate(v))
    return out


def mirror_indices(start: int, size: int, n: int, mode: str = "symmetric") -> np.ndarray:
    """Indices ``start .. start+size-1`` folded into ``0..n-1`` by mirroring.

    ``symmetric`` repeats the edge pixel (``2 1 0 | 0 1 2``, numpy's ``symmetric``, MATLAB's
    padarray ``'symmetric'``); ``reflect`` does not (``2 1 | 0 1 2``, numpy's ``reflect``,
    OpenCV's ``BORDER_REFLECT_101``). Offsets larger than the image keep mirroring.
    """
    idx = np.arange(start, start + size, dtype=np.intp)
    if mode == "symmetric":
        m = np.mod(idx, 2 * n)
        return np.where(m < n, m, 2 * n - 1 - m)
    if mode == "reflect":
        if n == 1:
            return np.zeros_like(idx)
        m = np.mod(idx, 2 * n - 2)
        return np.where(m < n, m, 2 * n - 2 - m)
    raise ValueError(f"mirror mode must be one of {', '.join(MIRROR_MODES)}, got {mode!r}")


def patch_origin(cx: float, cy: float, size: int = DEFAULT_SIZE) -> tuple[int, int]:
    """Top-left image pixel ``(x0, y0)`` of the patch centred on ``(cx, cy)``."""
    return int(math.floor(cx + 0.5)) - size // 2, int(math.floor(cy + 0.5)) - size // 2


def crop_patch(img: np.ndarray, cx: float, cy: float, size: int = DEFAULT_SIZE,
               mode: str = "symmetric") -> np.ndarray:
    """A ``size`` x ``size`` patch centred on ``(cx, cy)``, mirror-padded past the border.

    Parameters
    ----------
    img : ndarray (H, W) or (H, W, C), any dtype
    cx, cy : float
        Centre in image pixels (pixel-centre convention).

    Returns
    -------
    ndarray (size, size[, C]), ``img.dtype``; a copy, never a view.
    """
    if size < 1:
        raise ValueError(f"patch size must be positive, got {size}")
    h, w = img.shape[:2]
    x0, y0 = patch_origin(cx, cy, size)
    if 0 <= x0 and x0 + size <= w and 0 <= y0 and y0 + size <= h:
        return img[y0:y0 + size, x0:x0 + size].copy()
    rows = mirror_indices(y0, size, h, mode)
    cols = mirror_indices(x0, size, w, mode)
    return img[rows[:, None], cols[None, :]]


def iter_patches(img: np.ndarray, particles: Sequence[Particle], size: int = DEFAULT_SIZE,
                 mode: str = "symmetric") -> Iterator[tuple[PatchCentre, np.ndarray]]:
    """Every patch of one image, in annotation order (one patch in memory at a time)."""
    for c in patch_centres(particles):
        yield c, crop_patch(img, c.x, c.y, size, mode)
