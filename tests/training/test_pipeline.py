from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from covtool.core.errors import ImageError, ManifestError
from covtool.core.imageio import write_image
from covtool.core.manifest import read_manifest
from covtool.training.config import AUGMENT_PRESETS, AugmentConfig, PipelineConfig
from covtool.training.dataset import make_dataset
from covtool.training.table import image_table
from covtool.training.tf_errors import translate_tf_error


@pytest.fixture
def mixed(tmp_path):
    """8-bit PNG, 16-bit PNG, 16-bit TIFF (with a transform), JPEG; values kept as references."""
    rng = np.random.default_rng(1)
    specs = [("a.png", np.uint8, 255, ""), ("b.png", np.uint16, 5000, "flip"),
             ("c.tif", np.uint16, 5000, "rot90_k1"), ("d.jpg", np.uint8, 0, "")]
    refs, rows = {}, []
    for i, (name, dtype, top, transform) in enumerate(specs):
        img = rng.integers(0, top + 1, (6, 6)).astype(dtype) if top else np.full((6, 6), 77, dtype)
        write_image(tmp_path / name, img)
        refs[name] = img
        rows.append({"id": name, "path": name, "label": "xy"[i % 2], "transform": transform})
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    return read_manifest(tmp_path / "m.csv"), refs


def test_decoding_keeps_stored_values_and_applies_the_transform(mixed):
    df, refs = mixed
    table = image_table(df, ["x", "y"])
    x, y = next(iter(make_dataset(table, PipelineConfig((6, 6), normalize="none"), 4)))
    x = x.numpy()[..., 0]
    assert np.array_equal(x[0], refs["a.png"].astype(np.float32))
    assert np.array_equal(x[1], np.fliplr(refs["b.png"]).astype(np.float32))
    assert x[1].max() > 255  # 16 bits survive
    assert np.array_equal(x[2], np.rot90(refs["c.tif"]).astype(np.float32))
    assert np.allclose(x[3], 77, atol=1)  # JPEG is lossy
    assert y.numpy().tolist() == [0, 1, 0, 1]


def test_normalisations(mixed):
    df, refs = mixed
    table = image_table(df.iloc[1:3], ["x", "y"])
    x = next(iter(make_dataset(table, PipelineConfig((6, 6)), 2)))[0].numpy()
    assert np.allclose(x.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    assert np.allclose(x.std(axis=(1, 2, 3)), 1, atol=1e-3)
    x = next(iter(make_dataset(table, PipelineConfig((6, 6), normalize="range",
                                                     value_range=(0, 5000)), 2)))[0].numpy()
    assert np.allclose(x[1, ..., 0], np.rot90(refs["c.tif"]) / 5000.0, atol=1e-6)


def test_bad_rows_name_the_manifest_line(mixed, tmp_path):
    df, _ = mixed
    (tmp_path / "c.tif").unlink()
    with pytest.raises(ManifestError, match=r"m\.csv:4: no such image file"):
        image_table(df, ["x", "y"])
    with pytest.raises(ManifestError, match=r"m\.csv:2: label 'x' is not one of the model's classes"):
        image_table(df.iloc[:1], ["p", "q"])
    bad = df.iloc[:1].copy()
    bad["transform"] = "rot45"
    with pytest.raises(ManifestError, match="unknown transform 'rot45'"):
        image_table(bad, ["x", "y"])


def test_size_mismatch_is_a_clear_error_and_resize_fits(mixed):
    df, _ = mixed
    table = image_table(df.iloc[:1], ["x", "y"])
    with pytest.raises(Exception) as err:
        list(make_dataset(table, PipelineConfig((8, 8)), 1))
    msg = translate_tf_error(err.value)
    assert isinstance(msg, ImageError)
    # the hint names no flag (training/ is below the CLI; it once named a --resize that never was)
    assert str(msg).endswith("a.png: image is 6x6 but the model takes 8x8 "
                             "(images are resized only to a given input size)")
    x = next(iter(make_dataset(table, PipelineConfig((8, 8), resize=True), 1)))[0]
    assert x.shape == (1, 8, 8, 1)


def test_shuffle_and_augmentation_are_functions_of_seed_and_epoch(mixed):
    df, _ = mixed
    table = image_table(df.iloc[:3], ["x", "y"])
    cfg = PipelineConfig((6, 6))
    aug = AUGMENT_PRESETS["covid-ctset"]

    def batch(epoch, cache="none"):
        c = replace(cfg, cache=cache)
        return next(iter(make_dataset(table, c, 3, augment=aug, shuffle=True, seed=5, epoch=epoch)))

    a, b, c = batch(2), batch(2), batch(3)
    assert np.array_equal(a[0].numpy(), b[0].numpy()) and np.array_equal(a[1].numpy(), b[1].numpy())
    assert not np.array_equal(a[0].numpy(), c[0].numpy())
    # per-image seeds: the batching does not change any image
    ones = np.concatenate([x.numpy() for x, _ in make_dataset(table, cfg, 1, augment=aug, shuffle=True,
                                                               seed=5, epoch=2)])
    assert np.allclose(ones, a[0].numpy(), atol=1e-5)
    # whole-batch reads (uncached) and per-image reads (cached, or resized) augment alike
    for c in (replace(cfg, cache="memory"),
              replace(cfg, resize=True)):
        other = next(iter(make_dataset(table, c, 3, augment=aug, seed=5, epoch=2)))[0].numpy()
        same = next(iter(make_dataset(table, cfg, 3, augment=aug, seed=5, epoch=2)))[0].numpy()
        assert np.allclose(other, same, atol=1e-4)
    plain = next(iter(make_dataset(table, cfg, 3)))[0].numpy()
    cached = next(iter(make_dataset(table, replace(cfg, cache="memory"), 3)))[0]
    assert np.array_equal(plain, cached.numpy())


def test_affine_rotation_by_90_degrees_is_a_quarter_turn():
    import tensorflow as tf

    from covtool.training.augment import affine_matrix

    img = np.arange(25, dtype=np.float32).reshape(5, 5)
    m = affine_matrix(math.pi / 2, 1.0, 1.0, 0.0, 0.0, 0.0, 5, 5).astype(np.float32)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=img[None, :, :, None], transforms=m[None], output_shape=[5, 5], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="NEAREST")[0, :, :, 0].numpy()
    assert any(np.allclose(out, np.rot90(img, k), atol=1e-3) for k in (1, 3))
    ident = affine_matrix(0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 5, 5)
    assert np.allclose(ident, [1, 0, 0, 0, 1, 0, 0, 0], atol=1e-6)
    # the pipeline's OpenCV warp gives the quarter turn too
    from covtool.training.augment import warp_array

    turned = warp_array(img[:, :, None], m)[:, :, 0]
    assert np.allclose(turned, out, atol=1e-3)


@pytest.mark.parametrize("channels", [1, 3, 5])
def test_opencv_warp_matches_tensorflows_projective_transform(channels):
    """Rotation, zoom, shift and shear, replicated border: OpenCV's bilinear warp equals
    ImageProjectiveTransformV3 within its 1/32-pixel grid (<= 1/64 px x the image's slope)."""
    import tensorflow as tf

    from covtool.training.augment import affine_matrix, warp_array

    yy, xx = np.mgrid[0:23, 0:31].astype(np.float32)
    img = np.stack([np.sin(xx / 4 + k) * 100 + yy * (k + 1) for k in range(channels)], axis=-1)
    slope = 100 / 4 + channels  # the largest derivative of the image, per pixel
    rng = np.random.default_rng(0)
    for _ in range(5):
        angle, shear = rng.uniform(-math.pi, math.pi), rng.uniform(-0.2, 0.2)
        zx, zy = rng.uniform(0.9, 1.1, 2)
        sx, sy = rng.uniform(-3, 3, 2)
        m = affine_matrix(angle, zx, zy, sx, sy, shear, 23, 31).astype(np.float32)
        ref = tf.raw_ops.ImageProjectiveTransformV3(
            images=img[None], transforms=m[None], output_shape=[23, 31], fill_value=0.0,
            interpolation="BILINEAR", fill_mode="NEAREST")[0].numpy()
        out = warp_array(img, m)
        assert out.shape == ref.shape
        into = np.zeros_like(out)
        assert warp_array(img, m, into) is into and np.array_equal(into, out)
        assert np.abs(out - ref).max() <= slope * 1.5 / 32
        assert np.abs(out - ref).mean() < slope / 64


def test_covid_ct_preset_crops_and_jitters_within_bounds(mixed):
    df, _ = mixed
    table = image_table(df.iloc[1:3], ["x", "y"])
    aug = AUGMENT_PRESETS["covid-ct"]
    assert aug.crop_scale == 0.5 and aug.brightness == 0.2 and aug.contrast == 0.2
    x = next(iter(make_dataset(table, PipelineConfig((6, 6)), 2, augment=aug, shuffle=True)))[0]
    assert x.shape == (2, 6, 6, 1) and np.isfinite(x.numpy()).all()
    flips = AugmentConfig(hflip=True)
    plain = next(iter(make_dataset(table, PipelineConfig((6, 6)), 2)))[0].numpy()
    got = next(iter(make_dataset(table, PipelineConfig((6, 6)), 2, augment=flips, epoch=1)))[0].numpy()
    for i in range(2):
        assert np.array_equal(got[i], plain[i]) or np.array_equal(got[i], plain[i][:, ::-1])


def test_flips_are_fair_and_the_warp_keeps_a_flat_image_flat():
    from covtool.training.augment import flip_and_warp

    img = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    combos = {"id": img, "h": img[:, ::-1], "v": img[::-1], "hv": img[::-1, ::-1]}
    seen = dict.fromkeys(combos, 0)
    flips = AugmentConfig(hflip=True, vflip=True)
    for i in range(400):
        out = flip_and_warp(img, np.array([7, i]), flips)
        name = next(k for k, v in combos.items() if np.array_equal(out, v))
        seen[name] += 1
    assert all(60 <= n <= 140 for n in seen.values()), seen
    # the same seed gives the same draw
    assert np.array_equal(flip_and_warp(img, np.array([7, 3]), flips),
                          flip_and_warp(img, np.array([7, 3]), flips))
    ct = AUGMENT_PRESETS["covid-ctset"]
    flat = np.full((16, 16, 1), 1234.0, np.float32)
    assert np.array_equal(flip_and_warp(flat, np.array([1, 2]), ct), flat)  # "nearest" fill
    ramp = np.tile(np.arange(16, dtype=np.float32), (16, 1))[..., None]
    moved = sum(not np.allclose(flip_and_warp(ramp, np.array([1, i]), ct), ramp) for i in range(20))
    assert moved >= 18


@pytest.mark.parametrize("name", ["b.png", "c.tif"])
def test_an_unreadable_image_is_one_line_naming_it(mixed, tmp_path, name):
    df, _ = mixed
    data = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(data[:60])  # truncated: the signature is fine, the rest is not
    table = image_table(df, ["x", "y"])
    for cfg in (PipelineConfig((6, 6)), PipelineConfig((6, 6), resize=True)):
        with pytest.raises(Exception) as err:
            list(make_dataset(table, cfg, 4))
        msg = translate_tf_error(err.value)
        assert isinstance(msg, ImageError)
        text = str(msg)
        assert text.startswith(str(tmp_path / name) + ": could not read the image: ")
        assert "\n" not in text


# --- one decoder, by content; one channel policy (issue 16) -------------------------------------

def _write_manifest(folder, rows):
    pd.DataFrame(rows).to_csv(folder / "m.csv", index=False)
    return read_manifest(folder / "m.csv")


def _encode(img, ext):
    import cv2

    ok, data = cv2.imencode(ext, img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def test_the_pipeline_reads_by_content_not_by_name(tmp_path):
    """COVID-CT's '.png' files holding JPEG stopped train at 'not a PNG file (bad signature)'."""
    flat = np.full((6, 6), 90, np.uint8)
    g16 = np.arange(36, dtype=np.uint16).reshape(6, 6) * 1000
    (tmp_path / "jpeg.png").write_bytes(_encode(flat, ".jpg"))
    (tmp_path / "png.jpg").write_bytes(_encode(flat, ".png"))
    (tmp_path / "png16.tif").write_bytes(_encode(g16, ".png"))
    df = _write_manifest(tmp_path, [{"id": n, "path": n, "label": "x"}
                                    for n in ("jpeg.png", "png.jpg", "png16.tif")])
    table = image_table(df, ["x"])
    for cfg in (PipelineConfig((6, 6), normalize="none"),
                PipelineConfig((6, 6), normalize="none", resize=True)):
        x = next(iter(make_dataset(table, cfg, 3)))[0].numpy()[..., 0]
        assert np.array_equal(x[0], flat) and np.array_equal(x[1], flat)
        assert np.array_equal(x[2], g16)   # 16 bits from a TIFF-named PNG


def test_grey_rgb_rgba_reach_the_model_one_documented_way(tmp_path):
    """Exact values at 1 and 3 channels: grey kept/repeated, grey-as-RGB its one channel, RGB kept
    or BT.601 luma, RGBA's alpha composited on black."""
    grey = np.array([[0, 7], [128, 255]], np.uint8)
    rgb = np.tile(np.array([200, 100, 50], np.uint8), (2, 2, 1))
    alpha = np.array([[255, 51], [0, 255]], np.uint8)
    files = {"grey.png": grey, "greyrgb.png": np.dstack([grey, grey, grey]), "rgb.png": rgb,
             "opaque.png": np.dstack([rgb, np.full((2, 2), 255, np.uint8)]),
             "rgba.png": np.dstack([rgb, alpha])}
    for name, img in files.items():
        write_image(tmp_path / name, img)
    df = _write_manifest(tmp_path, [{"id": n, "path": n, "label": "x"} for n in files])
    table = image_table(df, ["x"])
    one = next(iter(make_dataset(table, PipelineConfig((2, 2), channels=1, normalize="none"), 5)))
    three = next(iter(make_dataset(table, PipelineConfig((2, 2), channels=3, normalize="none"), 5)))
    one, three = one[0].numpy()[..., 0], three[0].numpy()
    y = 0.299 * 200 + 0.587 * 100 + 0.114 * 50
    assert np.array_equal(one[0], grey) and np.array_equal(one[1], grey)
    assert np.allclose(one[2], y, atol=1e-4) and np.allclose(one[3], y, atol=1e-4)
    assert np.allclose(one[4], y * alpha / 255, atol=1e-4)
    assert np.array_equal(three[0], np.dstack([grey, grey, grey]))
    assert np.array_equal(three[1], three[0])
    assert np.array_equal(three[2], rgb) and np.array_equal(three[3], rgb)
    assert np.allclose(three[4], rgb * (alpha / 255)[..., None], atol=1e-4)


def test_model_channels_do_not_depend_on_row_order(tmp_path):
    from covtool.training.table import model_channels, probe_shape

    grey = np.full((4, 5), 60, np.uint8)
    paths = [write_image(tmp_path / "g.png", grey),
             write_image(tmp_path / "g3.png", np.dstack([grey, grey, grey])),     # grey as RGB
             write_image(tmp_path / "g16.tif", grey.astype(np.uint16))]
    assert model_channels(paths) == 1
    colour = np.dstack([grey, grey, grey + 1])
    paths.append(write_image(tmp_path / "c.png", colour))
    assert model_channels(paths) == 3 and model_channels(paths[::-1]) == 3
    assert probe_shape(str(paths[0]), paths) == (4, 5, 3)
    assert probe_shape(str(paths[0])) == (4, 5, 1)


def test_content_that_is_no_image_names_the_manifest_line(mixed, tmp_path):
    df, _ = mixed
    (tmp_path / "b.png").write_text("<html>not found</html>")
    with pytest.raises(ManifestError, match=r"m\.csv:3: not an image file: its content is none of"):
        image_table(df, ["x", "y"])


@pytest.mark.realdata
def test_covid_ct_jpeg_in_png_and_rgba_images_go_through_the_pipeline():
    """The release's '.png' files holding JPEG and its RGBA images, resized to 32x32, 3 channels."""
    from tests.conftest import shared_data

    root = shared_data("covid-ct", "Images-processed")
    jpeg_named_png, rgba = [], []
    for p in sorted((root / "CT_COVID").glob("*.png")):
        head = p.read_bytes()[:32]
        if head.startswith(b"\xff\xd8\xff"):
            jpeg_named_png.append(p)
        elif head[25] == 6 and len(rgba) < 6:
            rgba.append(p)
    assert len(jpeg_named_png) == 34
    rows = [{"id": p.stem, "path": str(p), "label": "covid"} for p in jpeg_named_png + rgba]
    table = image_table(pd.DataFrame(rows), ["covid"])
    cfg = PipelineConfig((32, 32), channels=3, resize=True, normalize="range", value_range=(0, 255))
    n = 0
    for x, _ in make_dataset(table, cfg, 20):
        x = x.numpy()
        assert x.shape[1:] == (32, 32, 3) and -1e-5 <= x.min() and x.max() <= 1 + 1e-5, x.max()
        assert x.std() > 0.05  # real pictures, not a constant
        n += len(x)
    assert n == 40
