from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.feature import graycomatrix, graycoprops, hog

from covtool.features.texture import (
    GLCM_COLUMNS,
    HOG_COLUMNS,
    object_region,
    quantize_8bit,
    texture_features,
)
from covtool.synth.em import DEFAULT_CLASSES, render_em_image


@pytest.fixture(scope="module")
def em():
    return render_em_image(DEFAULT_CLASSES[1], (160, 160), 1.0, n_particles=1, seed=3)


def test_region_is_masked_bounding_box(em):
    rows, cols = np.flatnonzero(em.mask.any(1)), np.flatnonzero(em.mask.any(0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    reg = object_region(em.image, em.mask)
    assert reg.dtype == np.uint8 and reg.shape == em.image[box].shape
    assert (reg[~em.mask[box]] == 0).all()
    inside = reg[em.mask[box]]
    assert inside.min() == 0 and inside.max() == 255
    whole = object_region(em.image, em.mask, masked=False)
    assert whole.shape == reg.shape and (whole[~em.mask[box]] > 0).any()


def test_hog_and_glcm_equal_direct_skimage_calls(em):
    f = texture_features(em.image, em.mask)
    reg = object_region(em.image, em.mask)
    small = cv2.resize(reg, (64, 64), interpolation=cv2.INTER_AREA)
    direct_hog = hog(small, orientations=9, pixels_per_cell=(32, 32), cells_per_block=(1, 1), block_norm="L2-Hys")
    assert direct_hog.shape == (36,)
    np.testing.assert_allclose([f[c] for c in HOG_COLUMNS], direct_hog, rtol=1e-12)
    g = graycomatrix(reg, [1], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=256, symmetric=True, normed=True)
    direct_glcm = np.concatenate([graycoprops(g, p)[0] for p in ("contrast", "homogeneity", "correlation", "energy")])
    np.testing.assert_allclose([f[c] for c in GLCM_COLUMNS], direct_glcm, rtol=1e-12)
    assert list(f) == HOG_COLUMNS + GLCM_COLUMNS


def test_glcm_sees_stripes_direction():
    img = np.zeros((40, 40), np.uint8)
    img[::2] = 200  # horizontal stripes: no change along rows (0°), full change across (90°)
    f = texture_features(img, np.ones_like(img, bool), masked=False)
    assert f["glcm_1"] == 0 and f["glcm_3"] > 10000   # contrast at 0° and 90°
    assert f["glcm_5"] == 1.0                           # homogeneity at 0°


def test_quantize_flat_and_range():
    assert (quantize_8bit(np.full((3, 3), 7.0)) == 0).all()
    q = quantize_8bit(np.array([[1000, 3000, 5000]], np.uint16))
    assert q.tolist() == [[0, 128, 255]]
