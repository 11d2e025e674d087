from __future__ import annotations

import numpy as np
import pytest

from covtool.em.annotations import parse_annotation_text
from covtool.em.patches import crop_patch, iter_patches, mirror_indices, patch_centres, patch_origin


def test_centres_point_vertices_and_two_point_midpoint():
    parts = parse_annotation_text("5 6\n0 0 10 20\n1 1 2 2 3 3\n")
    cs = patch_centres(parts)
    assert [(c.object, c.vertex, c.kind) for c in cs] == [
        (0, 0, "point"), (1, 0.5, "midpoint"), (2, 0, "vertex"), (2, 1, "vertex"), (2, 2, "vertex")]
    assert (cs[1].x, cs[1].y) == (5.0, 10.0)
    assert [(c.x, c.y) for c in cs[2:]] == [(1, 1), (2, 2), (3, 3)]


def test_inner_patch_is_the_plain_window():
    img = np.arange(100 * 120, dtype=np.uint16).reshape(100, 120)
    p = crop_patch(img, 60.4, 50.6, size=16)
    assert p.dtype == np.uint16 and p.shape == (16, 16)
    assert patch_origin(60.4, 50.6, 16) == (52, 43)
    np.testing.assert_array_equal(p, img[43:59, 52:68])
    assert p[8, 8] == img[51, 60]              # the pixel nearest the centre is at size // 2
    p[0, 0] = 0
    assert img[43, 52] != 0 or 43 * 120 + 52 == 0   # a copy, not a view


@pytest.mark.parametrize("mode", ["symmetric", "reflect"])
def test_border_patches_equal_numpy_pad(mode):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (30, 40), dtype=np.uint8)
    for cx, cy in [(0, 0), (39, 29), (2.2, 17), (20, 28.9), (-0.5, -0.5)]:
        size = 24
        x0, y0 = patch_origin(cx, cy, size)
        padded = np.pad(img, size, mode=mode)
        want = padded[y0 + size:y0 + 2 * size, x0 + size:x0 + 2 * size]
        np.testing.assert_array_equal(crop_patch(img, cx, cy, size, mode), want)


def test_patch_larger_than_the_image_keeps_mirroring():
    img = np.arange(5, dtype=np.int32)[None, :].repeat(3, axis=0)
    p = crop_patch(img, 2, 1, size=13)
    np.testing.assert_array_equal(p[0], [3, 2, 1, 0, 0, 1, 2, 3, 4, 4, 3, 2, 1])
    assert mirror_indices(-3, 8, 3).tolist() == [2, 1, 0, 0, 1, 2, 2, 1]
    assert mirror_indices(-3, 8, 3, "reflect").tolist() == [1, 2, 1, 0, 1, 2, 1, 0]
    assert p.shape == (13, 13)


def test_colour_patch_and_iteration():
    img = np.zeros((20, 20, 3), np.float32)
    img[..., 1] = 1
    parts = parse_annotation_text("3 3\n10 10 12 12\n")
    got = list(iter_patches(img, parts, size=8))
    assert len(got) == 2 and all(p.shape == (8, 8, 3) for _, p in got)
    assert got[1][0].kind == "midpoint" and (got[1][1][..., 1] == 1).all()
