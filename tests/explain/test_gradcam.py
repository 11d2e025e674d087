from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from covtool.explain.gradcam import find_last_conv_layer, gradcam, overlay  # noqa: E402


def squares(n, size=32, seed=0):
    """Class 1 images hold a bright 8x8 square at a random place; class 0 only noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.1, (n, size, size, 1)).astype(np.float32)
    y = np.arange(n) % 2
    boxes = []
    for i in range(n):
        r, c = rng.integers(2, size - 10, 2)
        boxes.append((r, c))
        if y[i]:
            x[i, r:r + 8, c:c + 8, 0] += 1.0
    return x, y, boxes


def hand_built_nested():
    """A backbone (nested model) whose feature map is the image's brightness; the head says
    'class 1' in proportion to mean brightness. Weights are set by hand, not learnt."""
    inp = keras.Input((32, 32, 1))
    feat = keras.layers.Conv2D(1, 1, activation="relu", name="feat",
                               kernel_initializer="ones", bias_initializer="zeros")(inp)
    backbone = keras.Model(inp, feat, name="backbone")
    outer_in = keras.Input((32, 32, 1))
    pooled = keras.layers.GlobalAveragePooling2D()(backbone(outer_in))
    logits = keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant([[-5.0, 5.0]]),
                                bias_initializer="zeros")(pooled)
    return keras.Model(outer_in, keras.layers.Softmax()(logits))


def test_last_conv_layer_is_found_inside_a_nested_backbone():
    model = hand_built_nested()
    assert find_last_conv_layer(model) == "backbone/feat"


def test_heatmap_of_hand_built_model_peaks_in_the_square():
    model = hand_built_nested()
    x, y, boxes = squares(6)
    heat, probs = gradcam(model, x[y == 1], class_index=1)
    assert heat.shape == (3, 32, 32) and heat.min() >= 0 and heat.max() <= 1
    for h, (r, c) in zip(heat, [b for b, k in zip(boxes, y) if k == 1]):
        pr, pc = np.unravel_index(np.argmax(h), h.shape)
        assert r <= pr < r + 8 and c <= pc < c + 8
        assert h[r:r + 8, c:c + 8].mean() > 3 * h.mean() - 1e-6


@pytest.mark.slow
def test_heatmap_of_a_trained_cnn_peaks_in_the_square():
    keras.utils.set_random_seed(0)
    x, y, boxes = squares(256, seed=1)
    model = keras.Sequential([
        keras.Input((32, 32, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="last_conv"),
        keras.layers.GlobalMaxPooling2D(),
        keras.layers.Dense(2, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    xt, yt, bt = squares(20, seed=2)
    assert model.evaluate(xt, yt, verbose=0)[1] >= 0.9
    heat, _ = gradcam(model, xt[yt == 1], class_index=1)
    hits = 0
    for h, (r, c) in zip(heat, [b for b, k in zip(bt, yt) if k == 1]):
        pr, pc = np.unravel_index(np.argmax(h), h.shape)
        hits += (r - 1 <= pr <= r + 8) and (c - 1 <= pc <= c + 8)
    assert hits >= 9  # of 10 positive images


def test_overlay_is_rgb_uint8():
    img = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32)
    heat = np.zeros((32, 32), np.float32)
    heat[:4, :4] = 1
    out = overlay(img, heat)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert out[0, 0, 0] > out[0, 0, 2]  # hot corner is red in jet


def test_the_default_layer_of_the_fpn_is_the_backbone_s_last_feature_map():
    """Was P7: the FPN's last 4-D layer, a 4x4 map (at 512x512; 1x1 here) of one of the five
    pyramid branches. Now the backbone's post_relu (C5), which feeds all five."""
    from covtool.explain.gradcam import default_layer, get_layer
    from covtool.models.build import ModelConfig, build_model

    model = build_model(ModelConfig(name="fpn", input_shape=(96, 96, 1), classes=2,
                                    weights="none", fpn_channels=8))
    assert find_last_conv_layer(model) == "P7"   # the old default
    layer = default_layer(model)
    assert layer == "backbone_resnet50v2/post_relu"
    assert get_layer(model, layer).output.shape[1:3] == (3, 3)   # C5: stride 32
    x = np.random.default_rng(0).normal(0, 1, (1, 96, 96, 1)).astype(np.float32)
    heat, probs = gradcam(model, x)   # the default reaches through the nested backbone
    assert heat.shape == (1, 96, 96) and probs.shape == (1, 2)


def test_the_default_layer_is_the_backbone_s_even_with_branches_after_it():
    """Two 4-D branches after a nested backbone: the default is the map both depend on."""
    from covtool.explain.gradcam import default_layer

    inp = keras.Input((16, 16, 1))
    feat = keras.layers.Conv2D(2, 3, padding="same", name="feat")(inp)
    backbone = keras.Model(inp, feat, name="backbone")
    outer = keras.Input((16, 16, 1))
    f = backbone(outer)
    a = keras.layers.Conv2D(2, 3, name="branch_a")(f)
    b = keras.layers.Conv2D(2, 3, strides=2, name="branch_b")(f)
    pooled = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(a),
                                         keras.layers.GlobalAveragePooling2D()(b)])
    model = keras.Model(outer, keras.layers.Dense(2, activation="softmax")(pooled))
    assert find_last_conv_layer(model) == "branch_b"
    assert default_layer(model) == "backbone/feat"
    assert default_layer(hand_built_nested()) == "backbone/feat"
