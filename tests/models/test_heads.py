"""The zoo's two heads (``dense``, the TEM paper's; ``pooled``, COVID-CT's DenseNet-169), their
parameter counts without building the heads, and the FPN's final layer."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from covtool.core.errors import ParameterError
from covtool.models import ModelConfig, build_model, count_trainable
from covtool.models.build import parameter_counts
from covtool.training.config import TrainConfig


def layer_types(model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def test_pooled_head_is_global_average_pooling_then_one_softmax_layer():
    cfg = ModelConfig(name="mobilenetv2", input_shape=(32, 32, 1), classes=3, head="pooled")
    model = build_model(cfg)
    types = layer_types(model)
    assert types[-2:] == ["GlobalAveragePooling2D", "Dense"] and "Flatten" not in types
    assert types.count("Dense") == 1 and "Dropout" not in types
    out = model.get_layer("predictions")
    assert out.units == 3 and out.activation.__name__ == "softmax"
    assert count_trainable(model) == 2_223_872 + 1280 * 3 + 3  # MobileNetV2 without its top
    probs = model(np.zeros((2, 32, 32, 1), "float32")).numpy()
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    dense = build_model(replace(cfg, head="dense", head_units=(8, 8)))
    assert layer_types(dense)[-5:] == ["Flatten", "Dense", "Dropout", "Dense", "Dense"]


@pytest.mark.parametrize("name, shape", [("mobilenetv2", (32, 32, 1)), ("vgg16", (64, 96, 3))])
def test_counted_heads_equal_keras_own_count_of_the_built_models(name, shape):
    cfg = ModelConfig(name=name, input_shape=shape, classes=4, head_units=(16, 8))
    counted = parameter_counts(cfg)
    assert set(counted) == {"dense", "pooled"}
    for head in ("dense", "pooled"):
        assert counted[head] == count_trainable(build_model(replace(cfg, head=head))), head
    frozen = parameter_counts(replace(cfg, freeze=True))
    assert frozen["pooled"] == count_trainable(build_model(replace(cfg, head="pooled", freeze=True)))


def test_densenet169_pooled_is_the_standard_network_and_the_tem_head_grows_with_the_input():
    backbone = 12_484_480  # DenseNet-169 without its top (keras.applications)
    small = parameter_counts(ModelConfig(name="densenet169", input_shape=(64, 64, 1), classes=2))
    assert small["pooled"] == backbone + 1664 * 2 + 2 == 12_487_810
    hidden = 1024 + 1024 * 1024 + 1024 + 1024 * 2 + 2
    assert small["dense"] == backbone + 2 * 2 * 1664 * 1024 + hidden  # a 2x2 map at 64x64


def test_a_config_without_head_is_the_dense_head_of_older_run_folders():
    old = TrainConfig().to_dict()
    del old["model"]["head"]
    cfg = TrainConfig.from_dict(old)
    assert cfg.model.head == "dense"
    assert ModelConfig.from_dict({"name": "vgg16"}).head == "dense"
    assert ModelConfig(name="vgg16", head="pooled").to_dict()["head"] == "pooled"
    model = build_model(ModelConfig.from_dict({"name": "mobilenetv2", "input_shape": [32, 32, 1],
                                               "classes": 2, "head_units": [4, 4]}))
    assert "head_flatten" in [layer.name for layer in model.layers]


@pytest.mark.parametrize("name, head, message", [
    ("vgg16", "linear", "must be one of dense, pooled"),
    ("custom", "pooled", "model 'custom' has its own head"),
    ("fpn", "pooled", "model 'fpn' has its own head"),
    ("jcs", "pooled", "model 'jcs' has its own head"),
])
def test_a_head_that_cannot_be_is_refused_naming_the_parameter(name, head, message):
    with pytest.raises(ParameterError, match=message) as err:
        build_model(ModelConfig(name=name, input_shape=(128, 128, 1), classes=2, head=head))
    assert err.value.param == "head"


@pytest.mark.slow
def test_fpn_final_softmax_is_initialised_like_the_authors_normal_0_001():
    import keras

    model = build_model(ModelConfig(name="fpn", input_shape=(96, 96, 1), classes=2))
    for name in ("predictions", "P3_dense", "P7_dense"):
        init = model.get_layer(name).kernel_initializer
        assert isinstance(init, keras.initializers.RandomNormal), name
        assert init.mean == 0.0 and init.stddev == 0.001, name
    kernel = model.get_layer("predictions").kernel.numpy()
    assert kernel.shape == (10, 2) and np.abs(kernel).max() < 0.01  # Glorot: up to 0.71
