"""Augmentation in the units the papers' libraries use (issue 19): Keras's shear in degrees,
brightness with an effect under per-image standardisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from covtool.training.config import AugmentConfig, TrainConfig


def _line_image(h=65, w=65):
    """A smooth vertical line at the centre column: its column per row is measured sub-pixel."""
    xx = np.arange(w, dtype=np.float32)
    row = np.exp(-0.5 * ((xx - (w - 1) / 2) / 2.0) ** 2)
    return np.repeat(row[None, :, None], h, axis=0)


def _centroid(img):
    xx = np.arange(img.shape[1])
    return (img * xx).sum(axis=1) / img.sum(axis=1)


@pytest.mark.parametrize("degrees", [10.0, 0.05 * 57.29577951308232])
def test_shear_is_in_degrees_as_keras_shear_range(degrees):
    """A shear of S degrees moves the top row against the bottom one by sin(S deg) (h - 1) pixels
    (Keras's shear matrix [[1, -sin], [0, cos]]; tan(S) for a pure shear, the same to 0.2 px here).
    Was radians: --shear 10 gave sin(10 rad) (h - 1) = -35 px, --shear 2.86 gave 18 px."""
    from covtool.training.augment import flip_and_warp

    aug = AugmentConfig(shear=degrees)
    seed = np.array([3, 7], np.int64)
    # the angle flip_and_warp draws: its generator's draws in order (rotation, zoom, shift, shear)
    rng = np.random.default_rng([3, 7])
    rng.uniform(-0.0, 0.0)
    rng.uniform(1.0, 1.0, 2)
    rng.uniform(-0.0, 0.0, 2)
    drawn = rng.uniform(-degrees, degrees)
    assert abs(drawn) > degrees / 4   # a real shear, not a near-zero draw
    h = 65
    out = flip_and_warp(_line_image(h), seed, aug)[..., 0]
    cols = _centroid(out[8:-8])   # rows far from the replicated border
    moved = (cols[-1] - cols[0]) / (h - 1 - 16) * (h - 1)
    assert moved == pytest.approx(math.sin(math.radians(drawn)) * (h - 1), abs=0.05)
    assert abs(moved - math.tan(math.radians(drawn)) * (h - 1)) < 0.2


def test_an_old_config_s_shear_in_radians_keeps_its_meaning():
    """config.json files written before the unit changed have no shear_unit: their shear was
    radians, read as the same angle in degrees; a new file round-trips unchanged."""
    old = TrainConfig().to_dict()
    old["augment"]["shear"] = 0.05
    del old["augment"]["shear_unit"]
    assert TrainConfig.from_dict(old).augment.shear == pytest.approx(math.degrees(0.05))
    new = TrainConfig(augment=AugmentConfig(shear=0.05))
    assert new.to_dict()["augment"]["shear_unit"] == "degrees"
    assert TrainConfig.from_dict(new.to_dict()) == new
    assert TrainConfig.from_dict(new.to_dict()).augment.shear == 0.05


@pytest.fixture
def two_slices(tmp_path):
    """Two 16-bit 'CT slices' (values ~1000-1400, as a raw CT) and their manifest."""
    import pandas as pd

    from covtool.core.imageio import write_image
    from covtool.core.manifest import read_manifest

    rng = np.random.default_rng(5)
    raws, rows = [], []
    for i in range(2):
        img = rng.integers(1000, 1400, (8, 8)).astype(np.uint16)
        write_image(tmp_path / f"s{i}.tif", img)
        raws.append(img.astype(np.float64))
        rows.append({"id": f"s{i}", "path": f"s{i}.tif", "label": "ab"[i]})
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    return read_manifest(tmp_path / "m.csv"), raws


def _batch(df, pipe, aug):
    from covtool.training.dataset import make_dataset
    from covtool.training.table import image_table

    table = image_table(df, ["a", "b"])
    return next(iter(make_dataset(table, pipe, 2, augment=aug, seed=1)))[0].numpy()[..., 0]


def test_brightness_has_an_effect_under_per_image_standardisation_and_is_not_contrast(two_slices):
    """Brightness b on the raw image, then the image's own standardisation constants: the model
    input is (b x - mean) / std, whose mean is (b - 1) mean/std (a CT slice: ~ +20 per 10 %).
    Was: b times the standardised image, the same as a contrast change (mean 0, std b)."""
    from covtool.training.config import PipelineConfig

    df, raws = two_slices
    pipe = PipelineConfig((8, 8))   # the default: per-image standardisation
    plain = _batch(df, pipe, None)
    bright = _batch(df, pipe, AugmentConfig(brightness=0.2))
    contrast = _batch(df, pipe, AugmentConfig(contrast=0.2))
    for k, raw in enumerate(raws):
        mean, std = raw.mean(), raw.std()
        b = bright[k].std()   # std of (b x - mean) / std is b
        assert 0.8 <= b <= 1.2 and abs(b - 1) > 1e-3
        assert np.allclose(bright[k], (b * raw - mean) / std, atol=1e-3)
        # shifted by (b - 1) mean / std (here ~10 (b - 1)): brightness, not contrast
        assert bright[k].mean() == pytest.approx((b - 1) * mean / std, abs=1e-3)
        assert abs(bright[k].mean()) > 5 * abs(b - 1)
        assert np.abs(bright[k] - plain[k]).min() > 5 * abs(b - 1)   # every pixel moved
        # contrast: a scaling about the image's mean, which standardisation put at 0
        assert abs(contrast[k].mean()) < 1e-4
        c = contrast[k].std()
        assert np.allclose(contrast[k], plain[k] * c, atol=1e-4)
        assert not np.allclose(bright[k], plain[k] * b, atol=0.1)


def test_brightness_under_a_fixed_range_is_the_plain_factor(two_slices):
    """With --normalize range (a fixed normalisation, as COVID-CT's authors used after their
    ColorJitter) brightness is exactly b (x - lo) ... scaled about where raw 0 lands."""
    from covtool.training.config import PipelineConfig

    df, raws = two_slices
    pipe = PipelineConfig((8, 8), normalize="range", value_range=(500.0, 5000.0))
    bright = _batch(df, pipe, AugmentConfig(brightness=0.2))
    for k, raw in enumerate(raws):
        # (b x - lo) / (hi - lo): solve b from the image's mean
        b = (bright[k].mean() * 4500.0 + 500.0) / raw.mean()
        assert 0.8 <= b <= 1.2
        assert np.allclose(bright[k], (b * raw - 500.0) / 4500.0, atol=1e-5)
