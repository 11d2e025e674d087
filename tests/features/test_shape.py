from __future__ import annotations

import math

import numpy as np
import pytest

from covtool.features.shape import SHAPE_COLUMNS, check_mask, label_objects, shape_features


def ellipse(a: float, b: float, angle_deg: float = 0.0, size: int = 320, centre=(0.0, 0.0)) -> np.ndarray:
    """Pixels whose centres lie inside an ellipse with semi-axes a (along angle) and b."""
    yy, xx = np.mgrid[0:size, 0:size].astype(float) - size / 2 + 0.5
    xx, yy = xx - centre[0], yy - centre[1]
    t = math.radians(angle_deg)
    u = xx * math.cos(t) + yy * math.sin(t)
    v = -xx * math.sin(t) + yy * math.cos(t)
    return (u / a) ** 2 + (v / b) ** 2 <= 1


def ramanujan(a: float, b: float) -> float:
    h = (a - b) ** 2 / (a + b) ** 2
    return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))


@pytest.mark.parametrize("a,b,angle", [(40, 40, 0), (45, 45, 0), (70, 40, 0), (70, 40, 30), (90, 45, 120)])
def test_known_shapes_within_two_percent(a, b, angle):
    s = 0.4854
    f = shape_features(ellipse(a, b, angle), s)
    assert f["area_nm2"] == pytest.approx(math.pi * a * b * s * s, rel=0.02)
    assert f["perimeter_nm"] == pytest.approx(ramanujan(a, b) * s, rel=0.02)
    assert f["major_axis_nm"] == pytest.approx(2 * a * s, rel=0.02)
    assert f["minor_axis_nm"] == pytest.approx(2 * b * s, rel=0.02)
    assert f["eccentricity"] == pytest.approx(a / b, rel=0.02)
    assert f["ellipse_eccentricity"] == pytest.approx(math.sqrt(1 - (b / a) ** 2), abs=0.02)
    assert list(f) == SHAPE_COLUMNS


def test_area_is_pixel_count_times_pixel_area():
    m = np.zeros((50, 60), bool)
    m[10:20, 5:35] = True
    f = shape_features(m, 2.0)
    assert f["area_nm2"] == 300 * 4.0
    assert f["eccentricity"] == pytest.approx(3.0, rel=0.01)


def _hu(mask):
    f = shape_features(mask, 1.0)
    return np.array([f[f"hu_{i}"] for i in range(1, 8)])


def _egg(angle: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """An asymmetric shape (ellipse + off-centre disc), so hu_3..hu_7 are not all zero."""
    size = int(320 * scale)
    t = math.radians(angle)
    off = (35 * scale * math.cos(t), 35 * scale * math.sin(t))
    return ellipse(80 * scale, 50 * scale, angle, size) | ellipse(40 * scale, 40 * scale, 0, size, off)


@pytest.mark.parametrize("make", [lambda ang, sc: ellipse(80 * sc, 50 * sc, ang, int(320 * sc)), _egg])
@pytest.mark.parametrize("angle,scale", [(90, 1), (30, 1), (0, 2)])
def test_hu_moments_invariant_to_rotation_and_scale(make, angle, scale):
    # every moment within 1e-3 absolutely; hu_1 (the largest) within 1e-3 relatively
    ref, moved = _hu(make(0, 1)), _hu(make(angle, scale))
    assert np.all(np.abs(moved - ref) <= 1e-3), (ref, moved)
    assert abs(moved[0] - ref[0]) <= 1e-3 * abs(ref[0])
    assert ref[0] > 0.15


def test_hu_moments_tell_shapes_apart():
    assert abs(_hu(ellipse(40, 40))[0] - _hu(ellipse(80, 40))[0]) > 0.02


def test_check_mask_errors():
    with pytest.raises(ValueError, match="differs from the image's 30x20"):
        check_mask(np.ones((10, 10)), (20, 30))
    with pytest.raises(ValueError, match="empty mask"):
        check_mask(np.zeros((10, 10)), (10, 10))
    assert check_mask(np.full((4, 4, 3), 255, np.uint8)).all()


def test_label_objects():
    m = np.zeros((20, 20), bool)
    m[1:4, 1:4] = True
    m[10:15, 10:15] = True
    m[4, 4] = True  # diagonal neighbour joins the first object (8-connectivity)
    lab = label_objects(m)
    assert lab.max() == 2 and (lab[1:4, 1:4] == lab[4, 4]).all()
