from __future__ import annotations

import numpy as np

from covtool.pdf.panels import PanelOptions, split_panels, to_gray8
from covtool.synth.pdf import ct_panel, grid_image


def test_white_gutters_grid_2x3_in_reading_order():
    panels = [np.full((40, 50), 60 + 20 * k, np.uint8) for k in range(6)]
    img = grid_image(panels, cols=3, gutter=6, background=255)
    boxes = split_panels(img)
    assert len(boxes) == 6
    assert boxes[0] == (0, 0, 50, 40)
    assert boxes[4] == (56, 46, 106, 86)   # second row, middle column


def test_black_gutters_between_ct_panels():
    rng = np.random.default_rng(1)
    img = grid_image([ct_panel(rng, 96) for _ in range(4)], cols=2, gutter=8, background=0)
    boxes = split_panels(img)
    assert len(boxes) == 4
    # each panel lies inside its own grid cell
    for (x0, y0, x1, y1), (r, c) in zip(boxes, [(0, 0), (0, 1), (1, 0), (1, 1)], strict=True):
        assert c * 104 <= x0 < x1 <= c * 104 + 96
        assert r * 104 <= y0 < y1 <= r * 104 + 96


def test_letters_in_the_gutter_do_not_bridge_it():
    img = grid_image([np.full((80, 80), 90, np.uint8)] * 2, cols=2, gutter=10, background=255)
    img[2:6, 82:86] = 0          # a small mark ("A") in the gutter
    assert len(split_panels(img)) == 2


def test_single_image_and_blank():
    img = np.full((60, 60), 255, np.uint8)
    img[10:50, 12:48] = 30
    assert split_panels(img) == [(12, 10, 48, 50)]
    assert split_panels(np.full((20, 20), 255, np.uint8)) == []


def test_tiny_slivers_are_not_panels():
    img = np.full((100, 100), 255, np.uint8)
    img[:, :90] = 40
    img[:, 94:] = 40            # a 6-px strip: below min_panel
    assert len(split_panels(img, PanelOptions(min_panel=0.15))) == 1


def test_to_gray8_scales_16_bit_and_keeps_rgb_mean():
    a = np.array([[0, 1000], [2000, 4000]], np.uint16)
    assert to_gray8(a).tolist() == [[0, 64], [128, 255]]
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 90
    assert to_gray8(rgb)[0, 0] == 30
