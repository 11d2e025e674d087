from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from covtool.core.errors import CovtoolError, UsageError
from covtool.models import ModelConfig, build_model, count_trainable


def test_custom_cnn_size_is_the_documented_one_near_the_papers():
    model = build_model(ModelConfig(name="custom", input_shape=(256, 256, 1), classes=14))
    count = count_trainable(model)
    assert count == 14_464_174  # docs/train.md; the paper reports 14,651,401
    assert abs(count - 14_651_401) / 14_651_401 < 0.015
    assert sum(1 for layer in model.layers if layer.name.endswith("_add")) == 4
    assert model.output_shape == (None, 14)


def test_vgg16_with_the_papers_head_matches_table_2_exactly():
    model = build_model(ModelConfig(name="vgg16", input_shape=(256, 256, 1), classes=14))
    assert count_trainable(model) == 49_334_094


def test_grey_input_is_repeated_to_three_channels_and_freeze_keeps_the_head():
    cfg = ModelConfig(name="mobilenetv2", input_shape=(32, 32, 1), classes=3, head_units=[8, 8])
    model = build_model(cfg)
    rgb = model.get_layer("grey_to_rgb")
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 1)).astype("float32")
    import keras

    out = keras.Model(model.input, rgb.output)(x).numpy()
    assert out.shape == (2, 32, 32, 3) and np.array_equal(out[..., 2], x[..., 0])
    probs = model(x).numpy()
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    frozen = build_model(replace(cfg, freeze=True))
    head = 1280 * 8 + 8 + 8 * 8 + 8 + 8 * 3 + 3
    assert count_trainable(frozen) == head


def test_offline_imagenet_download_fails_with_one_clear_line(monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/x.h5: None -- "
                        "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(CovtoolError) as err:
        build_model(ModelConfig(name="mobilenetv2", input_shape=(32, 32, 1), classes=2,
                                weights="imagenet"))
    text = str(err.value)
    assert "\n" not in text and text.startswith("weights: could not get")
    assert "PATH" in text and "mobilenetv2" in text


def test_weights_from_a_local_file(tmp_path):
    cfg = ModelConfig(name="custom", input_shape=(32, 32, 1), classes=2, filters=[4, 4, 4, 4],
                      final_filters=2, head_units=[4, 4])
    a = build_model(cfg)
    path = tmp_path / "a.weights.h5"
    a.save_weights(path)
    b = build_model(replace(cfg, weights=str(path)))
    assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights(), strict=True))
    wrong = replace(cfg, classes=5, weights=str(path))
    with pytest.raises(CovtoolError, match="do not fit"):
        build_model(wrong)
    with pytest.raises(CovtoolError, match="no such weights file"):
        build_model(replace(cfg, weights=str(tmp_path / "none.h5")))


def test_bad_configurations_are_refused():
    with pytest.raises(UsageError, match="unknown model"):
        build_model(ModelConfig(name="alexnet"))
    with pytest.raises(UsageError, match="at least 96x96"):
        build_model(ModelConfig(name="fpn", input_shape=(64, 64, 1), classes=2))
    with pytest.raises(UsageError, match="4 widths"):
        build_model(ModelConfig(name="custom", filters=[8, 8]))


@pytest.mark.slow
def test_fpn_concatenates_five_pyramid_outputs_of_two_units():
    model = build_model(ModelConfig(name="fpn", input_shape=(96, 96, 1), classes=2))
    concat = model.get_layer("pyramid_concat")
    assert concat.output.shape[-1] == 10
    for level in (3, 4, 5, 6, 7):
        dense = model.get_layer(f"P{level}_dense")
        assert dense.units == 2 and dense.activation.__name__ == "relu"
    assert model.get_layer("P4_merged").output.shape[-1] == 512  # concatenation, not addition
    assert model.get_layer("predictions").activation.__name__ == "softmax"


def test_custom_batch_norm_momentum_is_an_option():
    cfg = ModelConfig(name="custom", input_shape=(32, 32, 1), classes=2, filters=[4, 4, 4, 4],
                      final_filters=2, head_units=[4, 4], bn_momentum=0.8)
    bns = [layer for layer in build_model(cfg).layers if "bn" in layer.name]
    assert len(bns) == 13 and all(layer.momentum == 0.8 for layer in bns)
