"""The JCS network (COVID-CT, Figure 6): structure at a small input, one build for the module."""

from __future__ import annotations

import numpy as np
import pytest

from covtool.core.errors import ParameterError
from covtool.models.build import MODEL_NAMES, ModelConfig, check_options

SIZE = 64


@pytest.fixture(scope="module")
def jcs():
    from covtool.models.build import build_model

    return build_model(ModelConfig(name="jcs", input_shape=(SIZE, SIZE, 1), classes=2))


def test_jcs_is_a_model_name_and_checks_its_rates():
    assert "jcs" in MODEL_NAMES
    for rates in ((3, 6), (0, 6, 9)):
        with pytest.raises(ParameterError) as err:
            check_options(ModelConfig(name="jcs", aspp_rates=rates))
        assert err.value.param == "aspp_rates"


def test_outputs_class_probabilities_first_then_the_mask(jcs):
    assert jcs.output_names == ["predictions", "mask"]
    x = np.random.default_rng(0).normal(size=(2, SIZE, SIZE, 1)).astype(np.float32)
    probs, mask = (np.asarray(t) for t in jcs(x, training=False))
    assert probs.shape == (2, 2) and mask.shape == (2, SIZE, SIZE, 1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert mask.min() >= 0.0 and mask.max() <= 1.0


def test_aspp_is_deeplabv3s_on_densenet169_features(jcs):
    backbone = jcs.get_layer("backbone_densenet169")
    assert backbone.output.shape[1:] == (SIZE // 32, SIZE // 32, 1664)
    rates = [jcs.get_layer(f"aspp_rate{r}_conv") for r in (3, 6, 9)]
    assert [layer.dilation_rate for layer in rates] == [(3, 3), (6, 6), (9, 9)]
    assert [layer.kernel_size for layer in rates] == [(3, 3)] * 3
    assert jcs.get_layer("aspp_1x1_conv").kernel_size == (1, 1)
    assert jcs.get_layer("aspp_concat").output.shape[-1] == 5 * 256   # 1x1, 3 atrous, pooling
    assert jcs.get_layer("aspp_project_conv").output.shape[-1] == 256


def test_trainable_parameters_are_densenet169_plus_aspp_and_both_branches(jcs):
    from covtool.models.build import count_trainable

    c, n = 1664, 256
    bn = 2 * n
    aspp = (c * n + bn) + 3 * (9 * c * n + bn) + (c * n + n) + (5 * n * n + bn)   # pooling: bias, no BN
    seg = (9 * n * n + bn) + (n + 1)
    cls = 2 * n * 2 + 2
    backbone = count_trainable(jcs.get_layer("backbone_densenet169"))
    assert backbone == 12_484_480                  # DenseNet-169 without its top
    assert count_trainable(jcs) == backbone + aspp + seg + cls == 25_760_131


def test_the_predicted_mask_feeds_the_classifier(jcs):
    """Changing only the segmentation branch's last layer changes the class probabilities."""
    logits = jcs.get_layer("seg_logits")
    saved = logits.get_weights()
    x = np.random.default_rng(1).normal(size=(2, SIZE, SIZE, 1)).astype(np.float32)
    try:
        out = []
        for bias in (-20.0, 20.0):                 # predicted mask ~0 everywhere, then ~1
            logits.set_weights([np.zeros_like(saved[0]), np.full_like(saved[1], bias)])
            probs, mask = (np.asarray(t) for t in jcs(x, training=False))
            out.append(probs)
            assert np.allclose(mask, 1.0 if bias > 0 else 0.0, atol=1e-6)
        assert np.abs(out[0] - out[1]).max() > 1e-4
    finally:
        logits.set_weights(saved)


def test_gradcam_default_target_is_what_the_classifier_pools(jcs):
    from covtool.explain.gradcam import find_last_conv_layer, gradcam

    assert find_last_conv_layer(jcs) == "cls_features"
    x = np.random.default_rng(2).normal(size=(1, SIZE, SIZE, 1)).astype(np.float32)
    heat, probs = gradcam(jcs, x)
    assert heat.shape == (1, SIZE, SIZE) and probs.shape == (1, 2)
