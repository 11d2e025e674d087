from __future__ import annotations

import numpy as np
import pytest

from covtool.ct.selection import (
    dark_pixel_count,
    dark_pixel_counts,
    scaled_region,
    select_slices,
    series_threshold,
)


def bright(shape=(512, 512)):
    return np.full(shape, 1000, np.uint16)


def test_region_edges_are_half_open_as_in_the_authors_code():
    img = bright()
    # inside: rows 240..339, columns 120..369
    for y, x in [(240, 120), (339, 369), (240, 369), (339, 120)]:
        img[y, x] = 0
    # just outside
    for y, x in [(239, 200), (340, 200), (300, 119), (300, 370)]:
        img[y, x] = 0
    assert dark_pixel_count(img) == 4


def test_dark_level_is_strict():
    img = bright()
    img[250, 130] = 299
    img[250, 131] = 300
    assert dark_pixel_count(img) == 1
    assert dark_pixel_count(img, dark_level=301) == 2


def test_custom_region_and_whole_region_count():
    img = np.zeros((512, 512), np.uint16)
    assert dark_pixel_count(img) == 250 * 100
    assert dark_pixel_count(img, region=(0, 0, 10, 5)) == 50


def test_region_is_scaled_for_other_sizes():
    assert scaled_region((512, 512)) == (120, 240, 370, 340)
    assert scaled_region((256, 256)) == (60, 120, 185, 170)
    assert scaled_region((1024, 512)) == (120, 480, 370, 680)  # H=1024, W=512
    img = np.zeros((256, 256), np.uint16)
    assert dark_pixel_count(img) == 125 * 50


def test_region_outside_the_image_is_refused():
    with pytest.raises(ValueError, match="reaches outside"):
        scaled_region((512, 512), (100, 100, 600, 200))
    with pytest.raises(ValueError):
        scaled_region((512, 512), (10, 10, 5, 20))


def test_threshold_is_range_over_divisor():
    assert series_threshold([30, 3000, 500]) == pytest.approx(2970 / 1.5)  # the paper's example: ~2000
    assert series_threshold([30, 3000], divisor=3) == pytest.approx(990.0)
    with pytest.raises(ValueError):
        series_threshold([])


def test_selection_keeps_counts_strictly_above_threshold():
    counts = [0, 100, 1500, 3000, 2000, 2001, 10]
    sel = select_slices(counts)
    assert sel.threshold == 2000.0
    # 2000 equals the threshold: discarded (the rule is strictly greater)
    assert sel.selected.tolist() == [False, False, False, True, False, True, False]


def test_flat_series_keeps_slices_with_any_dark_pixel():
    assert select_slices([5, 5, 5]).selected.tolist() == [True, True, True]
    assert select_slices([0, 0]).selected.tolist() == [False, False]


def test_counts_stream_without_keeping_slices():
    def gen():
        for k in range(4):
            img = bright()
            img[240:240 + k, 120:370] = 0
            yield img

    assert dark_pixel_counts(gen()).tolist() == [0, 250, 500, 750]


def test_colour_slice_is_refused():
    with pytest.raises(ValueError, match="single-channel"):
        dark_pixel_count(np.zeros((512, 512, 3), np.uint16))
