"""Pretrained weights: Keras's own ImageNet download, or a local weights file.

``--weights imagenet`` goes through ``keras.applications`` (download and cache in
``~/.keras/models``). When that fails (offline machines, cluster nodes), the error says how to
pass a local file instead.
"""

from __future__ import annotations

from pathlib import Path

from covtool.core.errors import CovtoolError, ParameterError


def imagenet_backbone(constructor, name: str, input_shape: tuple[int, int, int], weights: str, **kwargs):
    """``constructor(include_top=False, weights=..., input_shape=..., **kwargs)`` with a clear offline error."""
    w = "imagenet" if weights == "imagenet" else None
    try:
        return constructor(include_top=False, weights=w, input_shape=input_shape, **kwargs)
    except Exception as exc:
        if w is None:
            raise
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ParameterError(
            "weights", f"could not get the ImageNet weights of {name} ({reason}); offline, "
            f"download the keras.applications '{name}' no-top weights file elsewhere and give its "
            "PATH (or copy it into ~/.keras/models/)"
        ) from None


def load_weights_file(model, path: str | Path) -> None:
    """Load weights from ``path`` into ``model``, or into its pretrained backbone.

    ``path`` may be a ``.keras`` model of the same architecture, a ``.weights.h5`` file of the
    whole model, or a keras.applications no-top ``.h5`` file (loaded into the backbone by layer
    name, the way the COVID-CTset authors loaded ImageNet weights).
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise ParameterError("weights", "no such weights file (give imagenet, none or a PATH)", path=path)
    try:
        if path.suffix == ".keras":
            other = keras.saving.load_model(path, compile=False)
            model.set_weights(other.get_weights())
            return
        try:
            model.load_weights(path)
            return
        except Exception:
            backbone = _backbone(model)
            if backbone is None:
                raise
            _load_legacy_by_name(backbone, path)
    except CovtoolError:
        raise
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise CovtoolError(f"weights do not fit model '{model.name}' ({reason})", path) from None


def _backbone(model):
    for layer in model.layers:
        if getattr(layer, "name", "").startswith("backbone"):
            return layer
    return None


def _load_legacy_by_name(backbone, path: Path) -> None:
    """Keras 2-style ``.h5`` (layer groups of weight datasets) into layers of the same name."""
    import h5py

    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs.get("layer_names", [])]
        if not names:
            raise CovtoolError("not a Keras weights file (no layer names)", path)
        loaded = 0
        for layer in _all_layers(backbone):
            if layer.name not in names or not layer.weights:
                continue
            g = group[layer.name]
            wnames = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
            values = [g[n][()] for n in wnames]
            if [tuple(v.shape) for v in values] != [tuple(w.shape) for w in layer.weights]:
                continue  # e.g. a first convolution of another channel count
            layer.set_weights(values)
            loaded += 1
        if loaded == 0:
            raise CovtoolError("no layer of the backbone matched this weights file", path)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
