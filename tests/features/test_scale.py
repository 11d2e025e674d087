from __future__ import annotations

import numpy as np
import pytest

from covtool.features.scale import find_scale_bar
from covtool.synth.em import DEFAULT_CLASSES, render_em_image
from covtool.synth.scalebar import draw_scale_bar


@pytest.mark.parametrize("cls,length,thickness,value,dtype", [
    (1, 206, 6, None, "uint16"),        # the paper's 206 px, black
    (0, 150, 4, 255, "uint8"),          # bright bar
    (2, 97, 3, None, "uint8"),
    (3, 180, 8, 65535, "uint16"),
])
def test_bar_on_synthetic_em_image_measured_within_one_pixel(cls, length, thickness, value, dtype):
    em = render_em_image(DEFAULT_CLASSES[cls], (240, 320), 0.6, n_particles=3, seed=cls, dtype=dtype)
    img, (x0, y0) = draw_scale_bar(em.image, length, thickness, value, margin=12)
    bar = find_scale_bar(img)
    assert bar is not None
    assert abs(bar.length_px - length) <= 1
    assert abs(bar.x - x0) <= 1 and abs(bar.y - y0) <= 1
    assert bar.polarity == ("dark" if value is None else "bright")
    assert bar.pixel_size_nm(100) == pytest.approx(100 / length, rel=0.01)


def test_longest_bar_wins_and_text_is_ignored():
    img = np.full((200, 300), 128, np.uint8)
    img[150:155, 20:100] = 0      # a shorter bar
    img[180:186, 60:266] = 0      # the 206 px bar
    img[20:40, 20:40] = 0         # a dark square: aspect 1
    img[60:64, 10:200:3] = 0      # dashes: not solid
    bar = find_scale_bar(img)
    assert (bar.length_px, bar.y, bar.thickness) == (206, 180, 6)


def test_no_bar():
    em = render_em_image(DEFAULT_CLASSES[0], (128, 128), 1.0, n_particles=2, seed=1)
    assert find_scale_bar(em.image) is None
    assert find_scale_bar(np.zeros((10, 10))) is None


def test_draw_scale_bar_does_not_fit():
    with pytest.raises(ValueError, match="does not fit"):
        draw_scale_bar(np.zeros((50, 50), np.uint8), 60)
