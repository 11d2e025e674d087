"""Lanczos-3 against an independent, straightforward implementation written here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from covtool.em.resample import lanczos3_resize, resample_mask, rescale_to_pixel_size


def reference_lanczos3(img: np.ndarray, scale: float) -> np.ndarray:
    """Direct formula, loop per output sample and tap (MATLAB imresize 'lanczos3' semantics).

    Output pixel j sits at u = (j + 0.5) / scale - 0.5; when shrinking the kernel is
    scale * L(scale * x); weights normalised; out-of-range samples mirrored with the edge repeated.
    """

    def lanczos(x: float) -> float:
        if x == 0:
            return 1.0
        if abs(x) >= 3:
            return 0.0
        px = math.pi * x
        return 3 * math.sin(px) * math.sin(px / 3) / (px * px)

    def mirror(i: int, n: int) -> int:
        while i < 0 or i >= n:
            i = -1 - i if i < 0 else 2 * n - 1 - i
        return i

    def one_axis(a: np.ndarray, n_out: int) -> np.ndarray:
        n_in = a.shape[0]
        k = min(scale, 1.0)
        out = np.zeros((n_out,) + a.shape[1:])
        for j in range(n_out):
            u = (j + 0.5) / scale - 0.5
            lo, hi = math.floor(u - 3 / k), math.ceil(u + 3 / k)
            total = 0.0
            acc = np.zeros(a.shape[1:])
            for i in range(lo, hi + 1):
                w = k * lanczos((u - i) * k)
                total += w
                acc += w * a[mirror(i, n_in)]
            out[j] = acc / total
        return out

    h, w = img.shape
    n_h, n_w = max(1, math.floor(h * scale + 0.5)), max(1, math.floor(w * scale + 0.5))
    rows = one_axis(img.astype(np.float64), n_h)
    return one_axis(rows.T, n_w).T


@pytest.mark.parametrize("scale", [0.5, 0.37, 1.0, 1.6, 3.0])
def test_matches_the_reference_on_random_images(scale):
    rng = np.random.default_rng(1)
    img = rng.random((23, 31)) * 100.0
    ours = lanczos3_resize(img, scale)
    ref = reference_lanczos3(img, scale)
    assert ours.shape == ref.shape == (max(1, math.floor(23 * scale + 0.5)), max(1, math.floor(31 * scale + 0.5)))
    assert np.abs(ours - ref).max() < 1e-3 * (img.max() - img.min())


@pytest.mark.parametrize("scale", [0.5, 2.5])
def test_integer_images_keep_their_dtype_and_round(scale):
    rng = np.random.default_rng(2)
    img = rng.integers(0, 65536, (20, 17)).astype(np.uint16)
    ours = lanczos3_resize(img, scale)
    ref = np.clip(np.rint(reference_lanczos3(img, scale)), 0, 65535)
    assert ours.dtype == np.uint16
    # float32 arithmetic may flip a rounding at .5: at most one unit
    assert np.abs(ours.astype(np.int64) - ref.astype(np.int64)).max() <= 1
    img8 = rng.integers(0, 256, (20, 17)).astype(np.uint8)
    out8 = lanczos3_resize(img8, scale)
    assert out8.dtype == np.uint8 and out8.min() >= 0  # overshoot is clipped, not wrapped


def test_float32_kept_and_flat_image_stays_flat():
    img = np.full((40, 30), 7.25, np.float32)
    out = lanczos3_resize(img, 0.3)
    assert out.dtype == np.float32 and out.shape == (12, 9)
    np.testing.assert_allclose(out, 7.25, atol=1e-5)


def test_shrinking_antialiases_unlike_point_sampling():
    # a checkerboard at the Nyquist limit must average out when halving, not alias
    img = (np.indices((64, 64)).sum(axis=0) % 2).astype(np.float64)
    out = lanczos3_resize(img, 0.5)
    assert np.abs(out[4:-4, 4:-4] - 0.5).max() < 0.02


def test_pixel_centre_geometry_moves_a_spot_as_the_annotation_rule_says():
    img = np.zeros((101, 101))
    img[30, 60] = 1.0
    out = lanczos3_resize(img, 2.0)
    y, x = np.unravel_index(np.argmax(out), out.shape)
    # x' = (x + 0.5) * 2 - 0.5 = 120.5: the peak straddles 120/121
    assert x in (120, 121) and y in (60, 61)
    assert out[y, 120] == pytest.approx(out[y, 121], rel=1e-6)


def test_colour_channels_are_resampled_independently():
    rng = np.random.default_rng(3)
    img = rng.random((15, 12, 3))
    out = lanczos3_resize(img, 0.6)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], lanczos3_resize(img[..., c], 0.6), atol=1e-12)


def test_rescale_to_pixel_size_and_bad_sizes():
    img = np.zeros((200, 100), np.uint16)
    out, scale = rescale_to_pixel_size(img, 0.5, 1.0)
    assert scale == 0.5 and out.shape == (100, 50)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="positive"):
            rescale_to_pixel_size(img, bad)
    with pytest.raises(ValueError, match="bool"):
        lanczos3_resize(np.zeros((4, 4), bool), 2.0)


def test_mask_follows_the_image_geometry():
    yy, xx = np.mgrid[0:80, 0:80]
    mask = ((xx - 40) ** 2 + (yy - 30) ** 2 <= 15 ** 2).astype(np.uint8) * 255
    out = resample_mask(mask, 0.5)
    assert out.dtype == np.uint8 and set(np.unique(out)) == {0, 255}
    # area scales by scale^2 within a rim's width
    assert abs((out > 0).sum() - (mask > 0).sum() * 0.25) < 2 * math.pi * 7.5
    ys, xs = np.nonzero(out)
    assert xs.mean() == pytest.approx((40 + 0.5) * 0.5 - 0.5, abs=0.3)
    assert ys.mean() == pytest.approx((30 + 0.5) * 0.5 - 0.5, abs=0.3)
