from __future__ import annotations

import numpy as np
import pytest

from covtool.core.errors import CovtoolError
from covtool.features.deep import (
    DEEP_MODELS,
    build_extractor,
    deep_features,
    feature_map_grid,
    prepare_batch,
)


def test_feature_map_grid_tiles_channels():
    maps = np.zeros((4, 5, 10), np.float32)
    for k in range(10):
        maps[..., k] = np.arange(20).reshape(4, 5) * (k + 1)
    g = feature_map_grid(maps, 9)
    assert g.dtype == np.uint8 and g.shape == (3 * 5 - 1, 3 * 6 - 1)
    assert g[0, 0] == 0 and g[3, 4] == 255 and g[4, :].max() == 0   # gap row between tiles


def test_vgg16_without_weights_gives_512_pooled_features_and_maps():
    model = build_extractor("vgg16", "none", 32, feature_layer="block1_conv2")
    imgs = [np.random.default_rng(0).integers(0, 65535, (40, 50), dtype=np.uint16),
            np.random.default_rng(1).integers(0, 255, (20, 20, 3), dtype=np.uint8)]
    batch = prepare_batch(imgs, "vgg16", 32)
    assert batch.shape == (2, 32, 32, 3) and batch.dtype == np.float32
    feats, maps = deep_features(model, batch)
    assert feats.shape == (2, DEEP_MODELS["vgg16"].features)
    assert maps.shape == (2, 32, 32, 64)
    assert np.isfinite(feats).all() and not np.allclose(feats[0], feats[1])


def test_bad_options():
    with pytest.raises(CovtoolError, match="too small"):
        build_extractor("xception", "none", 32)
    with pytest.raises(CovtoolError, match="unknown deep model"):
        build_extractor("resnet", "none", 64)
    with pytest.raises(CovtoolError, match="no such weights file"):
        build_extractor("vgg16", "/nonexistent/w.h5", 32)


def test_local_weights_file_is_loaded(tmp_path):
    a = build_extractor("vgg16", "none", 32)
    path = tmp_path / "vgg16_notop.weights.h5"
    a.save_weights(path)
    b = build_extractor("vgg16", str(path), 32)
    x = prepare_batch([np.arange(1600, dtype=np.float32).reshape(40, 40)], "vgg16", 32)
    np.testing.assert_allclose(deep_features(a, x)[0], deep_features(b, x)[0], rtol=1e-5, atol=1e-6)
