"""Grad-CAM (Selvaraju et al.) for Keras 3 classifiers, nested backbones included.

The heatmap for class c at a convolutional layer with activations A (H', W', K) is
``ReLU(sum_k alpha_k A_k)`` with ``alpha_k`` the spatial mean of ``d y_c / d A_k``, where ``y_c`` is
the class score. Selvaraju et al. take the score before the softmax; covtool differentiates the
model's output for class c, the softmax probability (its classifiers end in a softmax layer). That
is covtool's choice: the COVID-CTset paper does not say which score it used, and its authors'
published code (``../shared/REFERENCES.md``) has no Grad-CAM. The heatmap is normalised to [0, 1]
per image and resized to the input size.

The default target layer (:func:`default_layer`) is the last convolutional layer of the model's
backbone where it has one (a ``keras.applications`` model used as a layer), else of the model.

The activations are captured by hooking the target layer's ``call`` for the duration of one
forward pass, so the layer may sit inside a nested backbone (``keras.applications`` models used as
a layer) where ``Model(inputs, layer.output)`` would not connect.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def iter_layers(model, prefix: str = "") -> Iterator[tuple[str, object]]:
    """Every layer, depth first, with its path (``backbone/conv5_block3_out``)."""
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        yield path, layer
        if hasattr(layer, "layers") and layer.layers:
            yield from iter_layers(layer, prefix=f"{path}/")


def _output_rank(layer) -> int | None:
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError):
        return None


#: a model's own default target, where its last 4-D layer is not what its classifier pools
#: (jcs: the last 4-D layers are the mask's; ``cls_features`` are the maps its classifier pools)
MODEL_TARGETS: dict[str, str] = {"jcs": "cls_features"}


def find_last_conv_layer(model) -> str:
    """The path of the last layer with a 4-D (N, H, W, C) output: the conventional Grad-CAM target
    (a model of :data:`MODEL_TARGETS`: its own)."""
    if model.name in MODEL_TARGETS:
        return MODEL_TARGETS[model.name]
    last = None
    for path, layer in iter_layers(model):
        if hasattr(layer, "layers") and layer.layers:
            continue  # a nested model: look inside it instead
        if _output_rank(layer) == 4 and "input" not in type(layer).__name__.lower():
            last = path
    if last is None:
        raise ValueError("the model has no layer with a 4-D output to explain")
    return last


def default_layer(model) -> str:
    """Grad-CAM's default target: the path of the last 4-D layer of the model's backbone (its first
    nested model) where it has one, else :func:`find_last_conv_layer`.

    The backbone's last feature map is the conventional Grad-CAM layer (Selvaraju et al.: the last
    convolutional layer) and the one every later branch depends on. The last 4-D layer of the
    whole model can be one branch of several: in COVID-CTset's FPN it is ``P7``, a 4x4 map (at
    512x512) of one of the five pyramid levels the classifier concatenates, whose gradient says
    nothing of the other four; the backbone's ``post_relu`` (C5, 16x16) feeds all five.
    """
    if model.name in MODEL_TARGETS:   # a model's own target (jcs) comes first
        return MODEL_TARGETS[model.name]
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            inner = [p for p, sub in iter_layers(layer, prefix=f"{layer.name}/")
                     if not (hasattr(sub, "layers") and sub.layers) and _output_rank(sub) == 4
                     and "input" not in type(sub).__name__.lower()]
            if inner:
                return inner[-1]
    return find_last_conv_layer(model)


def check_target(model, path: str) -> None:
    """Refuse a Grad-CAM target that is not a layer of ``model`` with a 4-D (N, H, W, C) output,
    as a ParameterError naming ``layer`` (before any image is read)."""
    from covtool.core.errors import ParameterError

    try:
        layer = get_layer(model, path)
    except ValueError as exc:
        raise ParameterError("layer", str(exc)) from None
    rank = _output_rank(layer)
    if rank != 4:
        raise ParameterError("layer", f"{path!r} has a {rank}-D output; Grad-CAM needs a "
                                      "convolutional layer's (N, H, W, C) maps")


def get_layer(model, path: str):
    """A layer by path (``a/b``) or by plain name anywhere in the model."""
    for p, layer in iter_layers(model):
        if p == path or p.split("/")[-1] == path:
            return layer
    names = ", ".join(p for p, _ in iter_layers(model))
    raise ValueError(f"no layer named {path!r} (layers: {names[:400]}...)")


def gradcam(model, images: np.ndarray, class_index: int | np.ndarray | None = None,
            layer: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM heatmaps for a batch.

    Parameters
    ----------
    model : keras.Model
        A classifier whose output is (N, classes).
    images : ndarray (N, H, W, C), float32
        Inputs exactly as the model expects them (preprocessed).
    class_index : int or ndarray (N,), optional
        The class to explain per image; default: the predicted class.
    layer : str, optional
        Target layer path or name; default :func:`default_layer`.

    Returns
    -------
    heatmaps : ndarray (N, H, W), float32 in [0, 1]
    probs : ndarray (N, classes), float32
    """
    import cv2
    import tensorflow as tf

    target = get_layer(model, layer or default_layer(model))
    captured: dict[str, object] = {}
    original = target.call

    def hooked(*args, **kwargs):
        out = original(*args, **kwargs)
        captured["a"] = out
        return out

    object.__setattr__(target, "call", hooked)
    try:
        x = tf.convert_to_tensor(np.asarray(images, np.float32))
        with tf.GradientTape() as tape:
            tape.watch(x)
            probs = model(x, training=False)
            if isinstance(probs, (list, tuple)):
                probs = probs[0]
            acts = captured["a"]
            if class_index is None:
                idx = tf.argmax(probs, axis=-1)
            else:
                idx = tf.convert_to_tensor(np.broadcast_to(np.asarray(class_index), (x.shape[0],)), tf.int64)
            score = tf.gather(probs, idx, axis=1, batch_dims=1)
        grads = tape.gradient(score, acts)
    finally:
        object.__delattr__(target, "call")
    if grads is None:
        raise ValueError(f"the output does not depend on layer {target.name!r}")
    acts, grads = np.asarray(acts, np.float32), np.asarray(grads, np.float32)
    weights = grads.mean(axis=(1, 2), keepdims=True)
    cams = np.maximum((weights * acts).sum(axis=-1), 0.0)
    h, w = x.shape[1], x.shape[2]
    out = np.zeros((cams.shape[0], h, w), np.float32)
    for i, cam in enumerate(cams):
        peak = cam.max()
        cam = cam / peak if peak > 0 else cam
        out[i] = cv2.resize(cam, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0), np.asarray(probs, np.float32)


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """An RGB uint8 picture: the image (1st–99th percentile window) under a jet-coloured heatmap.

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C), any dtype
    heatmap : ndarray (H, W), float in [0, 1]
    """
    import cv2

    from covtool.core.imageio import to_grey

    img = to_grey(np.asarray(image)).astype(np.float32)  # the one grey conversion (docs/images.md)
    lo, hi = np.percentile(img, [1, 99])
    grey = np.clip((img - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    grey = (grey * 255).astype(np.uint8)
    base = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    colour = cv2.applyColorMap((np.clip(heatmap, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(base, 1 - alpha, colour, alpha, 0)
