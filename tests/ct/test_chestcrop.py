"""The chest crop (COVID-CT): generated CTs in the release's formats, and the real release."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from covtool.core.errors import ParameterError
from covtool.core.imageio import read_image
from covtool.ct.chestcrop import air_threshold, chest_box, grey8, white_bands
from tests.conftest import shared_data


def chest(h=120, w=160, body=(20, 30, 140, 100), seed=0) -> np.ndarray:
    """A lung-window-like slice: black air, a grey-white body ellipse in ``body`` (x0, y0, x1,
    y1, exclusive), two dark lungs inside, noise."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w), np.uint8)
    x0, y0, x1, y1 = body
    cx, cy, ax, ay = (x0 + x1 - 1) / 2, (y0 + y1 - 1) / 2, (x1 - x0 - 1) / 2, (y1 - y0 - 1) / 2
    yy, xx = np.mgrid[:h, :w]
    inside = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1
    img[inside] = 200
    for sx in (-0.45, 0.45):
        lung = ((xx - cx - sx * ax) / (0.3 * ax)) ** 2 + ((yy - cy) / (0.6 * ay)) ** 2 <= 1
        img[lung] = 40
    noise = rng.integers(0, 12, img.shape)
    return np.clip(img.astype(int) + noise * inside, 0, 255).astype(np.uint8)


def ellipse_box(img_body_mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(img_body_mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_black_space_is_cropped_to_the_body():
    img = chest()
    found = chest_box(img)
    truth = ellipse_box(img > 100)
    assert found.box == truth            # the ellipse's own box: nothing cut, nothing left over
    assert found.text == ",".join(map(str, truth))
    x0, y0, x1, y1 = found.box
    assert not (found.body[:, :x0].any() or found.body[:, x1:].any()
                or found.body[:y0].any() or found.body[y1:].any())
    assert 0 < found.hull_area <= (x1 - x0) * (y1 - y0)


def test_white_page_margin_is_white_space_and_is_removed():
    img = np.full((160, 200), 255, np.uint8)
    img[20:140, 20:180] = chest()          # the picture on a white page
    found = chest_box(img)
    assert white_bands(grey8(img)) == (20, 20, 20, 20)
    assert found.box == tuple(v + 20 for v in ellipse_box(chest() > 100))


def test_saturated_tissue_at_the_edge_is_not_white_space():
    # a lung window whose white body runs off the top: its white fades along the body's curve
    img = chest(body=(10, -40, 150, 110))
    img[img >= 190] = 255
    assert white_bands(grey8(img))[0] == 0
    assert chest_box(img).box[1] == 0      # the body's top stays in


def test_text_labels_and_small_objects_are_left_out_but_both_arms_kept():
    img = chest(h=140, w=220, body=(50, 20, 170, 120))
    _, ey0, _, ey1 = ellipse_box(img > 100)
    cv2.putText(img, "R", (2, 135), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1)
    arm_l, arm_r = (slice(50, 80), slice(20, 40)), (slice(50, 80), slice(180, 200))
    img[arm_l] = img[arm_r] = 180
    found = chest_box(img)
    x0, y0, x1, y1 = found.box
    assert (x0, x1) == (20, 200)             # both arms in
    assert abs(y0 - ey0) <= 1 and abs(y1 - ey1) <= 1   # the label (bottom left) out


def test_mediastinal_window_keeps_the_fat():
    # air 0, fat 40 (dark grey), muscle 120, a bright vessel: one Otsu split would cut the fat
    img = np.zeros((100, 100), np.uint8)
    img[10:90, 10:90] = 40
    img[30:70, 30:70] = 120
    img[45:55, 45:55] = 250
    assert air_threshold(img) < 40
    assert chest_box(img).box == (10, 10, 90, 90)


def test_margin_is_added_and_clipped():
    img = chest()
    x0, y0, x1, y1 = chest_box(img).box
    assert chest_box(img, margin=5).box == (x0 - 5, y0 - 5, x1 + 5, y1 + 5)
    assert chest_box(img, margin=500).box == (0, 0, 160, 120)


@pytest.mark.parametrize("layout", ["rgb", "rgba", "grey_alpha", "uint16", "float32"])
def test_layouts_and_dtypes_give_the_grey_images_box(layout):
    grey = chest()
    img = {"rgb": np.dstack([grey] * 3), "rgba": np.dstack([grey] * 3 + [np.full_like(grey, 255)]),
           "grey_alpha": np.dstack([grey, np.full_like(grey, 255)]),
           "uint16": grey.astype(np.uint16) * 257, "float32": grey.astype(np.float32) / 255}[layout]
    assert chest_box(img).box == chest_box(grey).box


def test_uniform_image_has_no_body_and_bad_options_are_named():
    assert chest_box(np.zeros((20, 20), np.uint8)) is None
    assert chest_box(np.full((20, 20), 255, np.uint8)) is None
    for kwargs, param in (({"margin": -1}, "margin"), ({"margin": 1.5}, "margin"),
                          ({"white_tolerance": 300}, "white_tolerance"),
                          ({"keep_fraction": 0}, "keep_fraction")):
        with pytest.raises(ParameterError) as err:
            chest_box(chest(), **kwargs)
        assert err.value.param == param


# --- the real release ------------------------------------------------------------------------

def outside_of_crossing_components(img, found) -> float:
    """Pixels above the air threshold outside the box that belong to a component reaching into
    the body, as a fraction of the body's area: what a box that cut into the body would lose."""
    g = grey8(img)
    h, w = g.shape
    t, b, left, r = white_bands(g)
    fg = np.zeros(g.shape, np.uint8)
    fg[t:h - b, left:w - r] = g[t:h - b, left:w - r] > found.threshold
    _, labels = cv2.connectedComponents(fg, connectivity=8)
    x0, y0, x1, y1 = found.box
    inside = np.zeros(g.shape, bool)
    inside[y0:y1, x0:x1] = True
    crossing = np.unique(labels[found.body])
    return float((np.isin(labels, crossing[crossing > 0]) & ~inside).sum() / found.body.sum())


@pytest.mark.realdata
def test_real_covid_ct_images_keep_the_whole_body():
    root = shared_data("covid-ct", "Images-processed")
    rng = random.Random(19)
    files = []
    for cls in ("CT_COVID", "CT_NonCOVID"):
        files += rng.sample(sorted((root / cls).iterdir()), 15)
    for f in files:
        img = read_image(f)
        found = chest_box(img)
        assert found is not None, f
        x0, y0, x1, y1 = found.box
        body = found.body
        # every body pixel inside, and the box tight: the body touches its four sides
        assert body.sum() == body[y0:y1, x0:x1].sum(), f
        assert body[y0].any() and body[y1 - 1].any() and body[:, x0].any() and body[:, x1 - 1].any(), f
        # never cut into the body: only thin attachments (a couch's edge, a line) stay outside
        assert outside_of_crossing_components(img, found) < 0.07, f
        assert (x1 - x0) * (y1 - y0) >= 0.5 * img.shape[0] * img.shape[1], f


@pytest.mark.realdata
@pytest.mark.parametrize("name, side, at_least", [
    ("CT_COVID/2020.03.07.20031393-p7-50%0.png", "top", 22),     # a white page margin above
    ("CT_NonCOVID/1335.png", "top", 30),                         # a black band above
    ("CT_COVID/2020.03.22.20034041-p17-80-2.png", "top", 60),    # a black label bar
    ("CT_NonCOVID/33%0.jpg", "bottom", 25),                      # a white margin below
])
def test_real_images_with_wide_margins_shrink(name, side, at_least):
    img = read_image(shared_data("covid-ct", "Images-processed", *name.split("/")))
    x0, y0, x1, y1 = chest_box(img).box
    cut = {"top": y0, "bottom": img.shape[0] - y1}[side]
    assert cut >= at_least
