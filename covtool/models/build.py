"""One entry point for every model: :func:`build_model` of a :class:`ModelConfig`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from covtool.core.errors import UsageError

#: keras.applications networks the TEM benchmark fine-tuned (Table 2), by covtool name.
ZOO_NAMES: tuple[str, ...] = (
    "densenet121", "densenet169", "densenet201", "vgg16", "vgg19", "inceptionv3",
    "mobilenetv2", "resnet50", "resnet50v2", "xception",
)
MODEL_NAMES: tuple[str, ...] = ("custom", "fpn", *ZOO_NAMES)


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model (stored in a run's ``config.json``).

    Attributes
    ----------
    name : str
        One of :data:`MODEL_NAMES`.
    input_shape : (H, W, C)
        C is 1 for grey images (fed to 3-channel backbones through a channel-repeat layer).
    classes : int
        Output units (softmax).
    weights : str
        ``"none"``, ``"imagenet"`` or a path to a Keras weights file (``.weights.h5``/``.keras``).
    freeze : bool
        Freeze the pretrained backbone (zoo and fpn); the head stays trainable.
    filters : list of int
        custom: the widths of the 4 residual blocks.
    final_filters : int
        custom: filters of the classification block's convolution.
    head_units : list of int
        Units of the two hidden fully connected layers of the head (custom and zoo).
    dropout : float
        Dropout rate of the head (between its first two dense layers) and of the FPN outputs.
    block_dropout : float
        custom: dropout after each residual block's max-pooling.
    bn_momentum : float
        custom: momentum of the batch-normalisation moving statistics (Keras's 0.99; a lower value
        lets very short runs, such as the demo's, reach usable inference statistics).
    backbone : str
        fpn: the ResNet V2 backbone (resnet50v2, resnet101v2, resnet152v2).
    fpn_channels : int
        fpn: feature channels of the pyramid.
    """

    name: str = "custom"
    input_shape: tuple[int, int, int] = (256, 256, 1)
    classes: int = 14
    weights: str = "none"
    freeze: bool = False
    filters: list[int] = field(default_factory=lambda: [64, 128, 256, 512])
    final_filters: int = 32
    head_units: list[int] = field(default_factory=lambda: [1024, 1024])
    dropout: float = 0.5
    block_dropout: float = 0.25
    bn_momentum: float = 0.99
    backbone: str = "resnet50v2"
    fpn_channels: int = 256

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "input_shape" in known:
            known["input_shape"] = tuple(int(v) for v in known["input_shape"])
        return cls(**known)


def validate(config: ModelConfig) -> None:
    """Refuse configurations that cannot build, with a message a user can act on."""
    if config.name not in MODEL_NAMES:
        raise UsageError(f"unknown model '{config.name}' (choose from {', '.join(MODEL_NAMES)})")
    h, w, c = config.input_shape
    if c not in (1, 3):
        raise UsageError(f"images need 1 (grey) or 3 (RGB) channels, got {c}")
    if config.classes < 2:
        raise UsageError(f"a classifier needs at least 2 classes, got {config.classes}")
    for name in ("dropout", "block_dropout"):
        if not 0.0 <= getattr(config, name) < 1.0:
            raise UsageError(f"{name} must be in [0, 1), got {getattr(config, name)}")
    if len(config.head_units) != 2 or min(config.head_units) < 1:
        raise UsageError(f"the head needs two positive unit counts, got {config.head_units}")
    if config.name == "custom":
        if len(config.filters) != 4 or min(config.filters) < 1:
            raise UsageError(f"the custom CNN has 4 residual blocks: give 4 widths, got {config.filters}")
        if min(h, w) < 16:
            raise UsageError(f"the custom CNN halves the input 4 times: input size must be >= 16, got {h}x{w}")
    minimum = {"inceptionv3": 75, "xception": 71, "fpn": 96}.get(config.name, 32)
    if min(h, w) < minimum:
        raise UsageError(f"model '{config.name}' needs inputs of at least {minimum}x{minimum}, got {h}x{w}")


def build_model(config: ModelConfig):
    """Build (and, for pretrained weights, load) the model a config describes.

    Returns
    -------
    keras.Model
        Input ``config.input_shape`` float32; output (classes,) softmax probabilities (float32 even
        under mixed precision).
    """
    validate(config)
    if config.name == "custom":
        from covtool.models.custom import build_custom

        model = build_custom(config)
    elif config.name == "fpn":
        from covtool.models.fpn import build_fpn

        model = build_fpn(config)
    else:
        from covtool.models.zoo import build_zoo

        model = build_zoo(config)
    if config.weights not in ("none", "imagenet"):
        from covtool.models.weights import load_weights_file

        load_weights_file(model, config.weights)
    return model


def count_trainable(model) -> int:
    """Trainable parameters, as Table 2 of the TEM paper counts them."""
    import numpy as np

    return int(sum(int(np.prod(v.shape)) for v in model.trainable_weights))
