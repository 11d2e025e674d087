"""Training the joint classification and segmentation model (jcs): masks through the pipeline,
the segmentation loss of rows without masks, and train -> eval -> explain on generated data.

The command-line test swaps DenseNet-169 for a two-layer feature extractor (the first training
step of DenseNet-169 traces for minutes on a CPU); everything after the features (ASPP, both
branches, the losses, the pipeline, eval's Dice and IoU, Grad-CAM) is the real code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from covtool.core.errors import ManifestError, ParameterError
from covtool.core.imageio import write_image

SIZE = 32


def write_jcs_toy(folder: Path, n: int = 12, size: int = SIZE, seed: int = 0) -> Path:
    """COVID rows with a bright square lesion, NonCOVID rows without; two rows in three carry a
    mask (the square; an empty mask for NonCOVID), the third none. Returns the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        covid = i % 2
        img = rng.normal(60, 5, (size, size))
        mask = np.zeros((size, size), np.uint8)
        if covid:
            y, x = rng.integers(2, size - 14, 2)
            mask[y:y + 12, x:x + 12] = 255
            img[mask > 0] += 150
        write_image(folder / f"img{i}.png", np.clip(img, 0, 255).astype(np.uint8))
        row = {"id": f"img{i}", "path": f"img{i}.png", "label": "COVID" if covid else "NonCOVID",
               "split": ("train", "train", "test")[i % 3] if i < n - 2 else "val", "mask": ""}
        if i % 3 != 1:
            write_image(folder / f"img{i}_mask.png", mask)
            row["mask"] = f"img{i}_mask.png"
        rows.append(row)
    path = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_seg_loss_of_a_batch_without_masks_is_zero_with_zero_gradient():
    import tensorflow as tf

    from covtool.training.losses import MaskedBinaryCrossentropy

    loss = MaskedBinaryCrossentropy()
    pred = tf.Variable(tf.fill((3, 8, 8, 1), 0.3))
    with tf.GradientTape() as tape:
        value = loss(tf.fill((3, 8, 8, 1), -1.0), pred)
    assert float(value) == 0.0
    assert float(tf.reduce_max(tf.abs(tape.gradient(value, pred)))) == 0.0


def test_seg_loss_counts_only_the_rows_with_a_mask():
    import tensorflow as tf

    from covtool.training.losses import MaskedBinaryCrossentropy

    target = np.zeros((2, 4, 4, 1), np.float32)
    target[0, :2] = 1.0
    target[1] = -1.0                                    # row 1: no mask
    pred = np.full((2, 4, 4, 1), 0.8, np.float32)
    pred[1] = 0.01                                      # whatever row 1 predicts
    value = float(MaskedBinaryCrossentropy()(tf.constant(target), tf.constant(pred)))
    row0 = -(np.log(0.8) * 8 + np.log(0.2) * 8) / 16   # its pixels' mean binary cross-entropy
    assert value == pytest.approx(row0 / 2, rel=1e-5)   # the batch mean: row 1 counts 0


def test_masks_move_with_the_geometric_augmentation_and_never_with_the_photometric(tmp_path):
    from covtool.training.config import AugmentConfig, PipelineConfig
    from covtool.training.dataset import make_dataset
    from covtool.training.table import ImageTable

    img = np.zeros((SIZE, SIZE), np.uint16)
    img[4:14, 6:20] = 1000                              # an off-centre bright block = its mask
    write_image(tmp_path / "a.png", img)
    write_image(tmp_path / "a_mask.png", (img > 0).astype(np.uint8) * 255)
    n = 6
    table = ImageTable([f"a{i}" for i in range(n)], [str(tmp_path / "a.png")] * n,
                       np.zeros(n, np.int32), np.zeros(n, np.int32), np.zeros(n, np.int32),
                       masks=[str(tmp_path / "a_mask.png")] * (n - 1) + [""])
    aug = AugmentConfig(hflip=True, vflip=True, rotation=40.0, zoom=0.2, shift=0.1,
                        crop_scale=0.5, brightness=0.2, contrast=0.2)
    pipe = PipelineConfig((SIZE, SIZE), 1, normalize="none")
    images, (labels, masks) = next(iter(make_dataset(table, pipe, n, augment=aug, seed=3)))
    images, masks = np.asarray(images)[..., 0], np.asarray(masks)[..., 0]
    assert labels.shape == (n,)
    assert np.all(masks[-1] == -1.0)                    # no mask: ignored everywhere
    assert set(np.unique(masks[:-1])) <= {0.0, 1.0}
    moved = 0
    for im, m in zip(images[:-1], masks[:-1], strict=True):
        block = im > (im.min() + im.max()) / 2          # where the bright block went
        assert (block != (m > 0)).mean() < 0.03         # the mask went with it (edge pixels)
        moved += not np.array_equal(m > 0, img > 0)
    assert moved >= 4                                   # and the augmentation did move them
    # the photometric jitter changed the images' values, not the masks' (0/1 above)
    assert len({round(float(im.max()), 1) for im in images[:-1]}) > 1


def test_a_mask_file_that_is_not_there_names_its_manifest_line(tmp_path):
    from covtool.core.manifest import read_manifest
    from covtool.training.table import image_table

    manifest = write_jcs_toy(tmp_path, n=4)
    df = pd.read_csv(manifest).fillna("")
    df.loc[2, "mask"] = "gone.png"
    df.to_csv(manifest, index=False)
    with pytest.raises(ManifestError) as err:
        image_table(read_manifest(str(manifest)), ["COVID", "NonCOVID"], masks=True)
    assert "no such mask file" in str(err.value) and ":4" in str(err.value)


def test_multiworker_refuses_jcs_before_any_work(monkeypatch):
    from covtool.models.build import ModelConfig
    from covtool.training.config import TrainConfig, validate

    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(ParameterError) as err:
        validate(TrainConfig(model=ModelConfig(name="jcs"), strategy="multiworker"))
    assert err.value.param == "strategy" and "jcs" in str(err.value)


def _tiny_features(config):
    import keras

    h, w, _ = config.input_shape
    x = inputs = keras.Input((h, w, 3))
    for k, filters in enumerate((8, 16)):
        x = keras.layers.Conv2D(filters, 3, strides=4, padding="same", activation="relu",
                                name=f"tiny{k}")(x)
    return keras.Model(inputs, x, name="backbone_densenet169")


def test_train_eval_explain_jcs_from_the_command_line(tmp_path, monkeypatch):
    from covtool.cli.app import app
    from covtool.models import jcs

    monkeypatch.setattr(jcs, "feature_extractor", _tiny_features)
    manifest = write_jcs_toy(tmp_path / "data")
    run = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(manifest), "-r", str(run), "--model", "jcs",
                                 "--aspp-channels", "8", "--epochs", "1", "--batch-size", "4",
                                 "--augment", "covid-ct", "--class-weights", "balanced",
                                 "--seg-loss-weight", "0.5"])
    assert result.exit_code == 0, result.output
    history = pd.read_csv(run / "history.csv")
    assert {"loss", "cls_loss", "seg_loss", "accuracy", "val_accuracy", "val_seg_loss"} <= set(history)
    assert history["seg_loss"][0] > 0
    config = json.loads((run / "config.json").read_text())
    assert config["seg_loss_weight"] == 0.5 and config["model"]["aspp_rates"] == [3, 6, 9]

    result = runner.invoke(app, ["eval", str(run), str(manifest), "-d", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    test = pd.read_csv(manifest).fillna("")
    test = test[test["split"] == "test"]
    assert metrics["masks"] == int((test["mask"] != "").sum()) > 0
    assert 0.0 <= metrics["iou"] <= metrics["dice"] <= 1.0
    predictions = pd.read_csv(tmp_path / "ev" / "predictions.csv")
    assert len(predictions) == len(test)

    result = runner.invoke(app, ["explain", str(run), str(manifest), "-d", str(tmp_path / "cam"),
                                 "--npy"])
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(tmp_path / "cam" / "explain.csv")
    assert len(rows) == len(pd.read_csv(manifest)) and set(rows["layer"]) == {"cls_features"}
    heat = np.load(next((tmp_path / "cam").glob("*.npy")))
    assert heat.shape == (SIZE, SIZE) and 0.0 <= heat.min() <= heat.max() <= 1.0


def test_dice_and_iou_per_image():
    from covtool.evaluation.segmentation import dice_iou

    true = np.zeros((3, 4, 4), bool)
    pred = np.zeros((3, 4, 4), bool)
    true[0, :2] = True                                  # 8 pixels
    pred[0, :1] = True                                  # 4 of them
    true[1, 0, 0] = True                                # missed entirely
    dice, iou = dice_iou(pred, true)                    # image 2: both empty
    np.testing.assert_allclose(dice, [2 * 4 / 12, 0.0, 1.0])
    np.testing.assert_allclose(iou, [4 / 8, 0.0, 1.0])
    # the lesion-only means leave out image 2 (no lesion): an empty-mask row cannot raise them
    from covtool.evaluation.segmentation import summary

    s = summary(dice, iou, true.reshape(3, -1).any(axis=1))
    assert s["masks"] == 3 and s["lesion_masks"] == 2
    assert s["dice"] == round((2 * 4 / 12 + 0 + 1) / 3, 6) and s["dice_lesion"] == round(2 * 4 / 12 / 2, 6)
    assert s["iou_lesion"] == 0.25
    assert summary(np.zeros(0), np.zeros(0), np.zeros(0, bool))["dice_lesion"] is None
