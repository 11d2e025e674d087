"""The file side of ``covtool features``: one image and its mask at a time.

:func:`load_item` reads and checks the files (errors name the file); :func:`item_features` is the
pure part: the shape and texture features of an image's mask (or of each of its objects).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from covtool.core.errors import ImageError
from covtool.em.pipeline import load_em_image
from covtool.features.scale import ScaleBar, find_scale_bar
from covtool.features.shape import check_mask, label_objects, shape_features
from covtool.features.texture import texture_features


def load_item(image_path: Path, mask_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an image (H, W) or (H, W, C) and its mask as bool (H, W); bad masks name the mask file."""
    img = load_em_image(image_path)
    raw = load_em_image(mask_path)
    try:
        mask = check_mask(raw, img.shape)
    except ValueError as exc:
        raise ImageError(str(exc), mask_path) from None
    return img, mask


def measure_scale(image: np.ndarray, bar_nm: float, image_path: Path | None = None) -> tuple[float, ScaleBar]:
    """nm per pixel from the image's scale bar standing for ``bar_nm``; ImageError when none is found."""
    bar = find_scale_bar(image)
    if bar is None:
        raise ImageError("no scale bar found (a solid dark or bright horizontal bar); "
                         "give 'pixel_size_nm' instead of measuring it", image_path)
    return bar.pixel_size_nm(bar_nm), bar


@dataclass
class ObjectFeatures:
    """Features of one row of the output: the whole mask (``obj`` None) or one object."""

    obj: int | None
    values: dict[str, float]
    region: np.ndarray = field(repr=False)   # what the deep model sees (image or bounding box)


def item_features(image: np.ndarray, mask: np.ndarray, pixel_size_nm: float, per_object: bool = False,
                  masked_texture: bool = True) -> list[ObjectFeatures]:
    """Shape and texture features of ``mask`` (bool (H, W)) on ``image``.

    Without ``per_object`` all foreground is one region (one row, the deep input is the whole image);
    with it, each 8-connected component is a row (the deep input is its bounding box).
    """
    if not per_object:
        values = shape_features(mask, pixel_size_nm) | texture_features(image, mask, masked_texture)
        return [ObjectFeatures(None, values, image)]
    out = []
    labels = label_objects(mask)
    for k in range(1, int(labels.max()) + 1):
        m = labels == k
        rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
        box = image[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        values = shape_features(m, pixel_size_nm) | texture_features(image, m, masked_texture)
        out.append(ObjectFeatures(k, values, box))
    return out
