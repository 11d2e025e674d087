"""SC2-MID deep features: global-average-pooled maps of ImageNet CNNs (VGG16, Xception, DenseNet121).

TensorFlow/Keras are imported here, inside the functions, and nowhere else in
``covtool.features``. Each input (an image or an object's bounding region) is stretched to 8 bits
(its own min..max), repeated to 3 channels, resized to ``input_size``² (bilinear, OpenCV) and passed
through the model's own ``preprocess_input``; the feature vector is the network's last convolutional
block, global-average-pooled (``include_top=False, pooling="avg"``): 512 values for VGG16, 2048
for Xception, 1024 for DenseNet121.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from covtool.core.errors import CovtoolError, ParameterError


@dataclass(frozen=True)
class DeepModel:
    """How to build one ImageNet CNN of ``keras.applications``."""

    name: str
    builder: str          # attribute of keras.applications
    module: str           # keras.applications submodule holding preprocess_input
    features: int         # length of the pooled vector
    min_input: int        # smallest input side keras accepts
    default_layer: str    # an early layer for the feature maps (edges and corners, as in Fig. 8)


DEEP_MODELS: dict[str, DeepModel] = {
    "vgg16": DeepModel("vgg16", "VGG16", "vgg16", 512, 32, "block1_conv2"),
    "xception": DeepModel("xception", "Xception", "xception", 2048, 71, "block1_conv1_act"),
    "densenet121": DeepModel("densenet121", "DenseNet121", "densenet", 1024, 32, "conv1_relu"),
}


def _spec(name: str) -> DeepModel:
    try:
        return DEEP_MODELS[name.lower()]
    except KeyError:
        raise ParameterError("deep", f"unknown deep model {name!r} (choose {', '.join(DEEP_MODELS)})") from None


def check_extractor(name: str, weights: str = "imagenet", input_size: int = 224) -> DeepModel:
    """The options of :func:`build_extractor`, checked without TensorFlow (before any work)."""
    spec = _spec(name)
    if input_size < spec.min_input:
        raise ParameterError("input_size", f"{input_size} is too small for {spec.name} (at least {spec.min_input})")
    w = weights.strip()
    if w.lower() not in ("none", "imagenet") and not Path(w).is_file():
        raise CovtoolError("no such weights file", w)
    return spec


def build_extractor(name: str, weights: str = "imagenet", input_size: int = 224,
                    feature_layer: str | None = None):
    """A Keras model: (N, S, S, 3) float32 → pooled features (N, F) [, maps of ``feature_layer``].

    Parameters
    ----------
    name : "vgg16", "xception" or "densenet121"
    weights : "imagenet", "none" or a path to a weights file (``.h5``/``.weights.h5``)
    input_size : int
        Side S of the square input (the paper's networks: 224; Xception 299).
    feature_layer : str, optional
        Also output this layer's activations (for the feature maps).
    """
    spec = check_extractor(name, weights, input_size)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    w = weights.strip()
    w_arg = "imagenet" if w.lower() == "imagenet" else None
    from covtool.models.weights import imagenet_backbone

    build = getattr(keras.applications, spec.builder)
    base = imagenet_backbone(build, spec.name, (input_size, input_size, 3), w_arg or "none", pooling="avg")
    if w_arg is None and w.lower() != "none":
        try:
            base.load_weights(w)
        except Exception as exc:
            raise CovtoolError(f"cannot load weights into {spec.name} without its top: "
                               f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", w) from None
    if feature_layer is None:
        return base
    try:
        layer = base.get_layer(feature_layer)
    except ValueError:
        raise ParameterError("feature_layer", f"{spec.name} has no layer {feature_layer!r}") from None
    return keras.Model(base.input, [base.output, layer.output])


def prepare_batch(images: list[np.ndarray], name: str, input_size: int) -> np.ndarray:
    """Images (H, W[, C]) of any dtype → the model's input, float32 (N, S, S, 3), preprocessed."""
    import importlib

    import cv2

    from covtool.features.texture import quantize_8bit, to_gray_float

    spec = _spec(name)
    batch = np.empty((len(images), input_size, input_size, 3), np.float32)
    for i, img in enumerate(images):
        q = quantize_8bit(to_gray_float(img))
        q = cv2.resize(q, (input_size, input_size), interpolation=cv2.INTER_LINEAR)
        batch[i] = np.repeat(q[..., None], 3, axis=2)
    mod = importlib.import_module(f"keras.applications.{spec.module}")
    return np.asarray(mod.preprocess_input(batch), dtype=np.float32)


def deep_features(model, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Run ``model`` on a prepared batch: (features (N, F) float32, maps (N, h, w, C) or None)."""
    out = model(batch, training=False)
    if isinstance(out, (list, tuple)):
        return np.asarray(out[0], np.float32), np.asarray(out[1], np.float32)
    return np.asarray(out, np.float32), None


def feature_map_grid(maps: np.ndarray, channels: int = 16) -> np.ndarray:
    """The first ``channels`` maps of one item (h, w, C) tiled in a square grid: uint8 (H', W').

    Each map is stretched to 0..255 on its own; 1-pixel dark gaps separate the tiles.
    """
    maps = np.asarray(maps, np.float32)
    n = max(1, min(channels, maps.shape[-1]))
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    h, w = maps.shape[:2]
    grid = np.zeros((rows * (h + 1) - 1, cols * (w + 1) - 1), np.uint8)
    for k in range(n):
        m = maps[..., k]
        lo, hi = float(m.min()), float(m.max())
        tile = np.zeros((h, w), np.uint8) if hi <= lo else np.rint((m - lo) * 255 / (hi - lo)).astype(np.uint8)
        r, c = divmod(k, cols)
        grid[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = tile
    return grid
