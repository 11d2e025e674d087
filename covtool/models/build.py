"""One entry point for every model: :func:`build_model` of a :class:`ModelConfig`."""

from __future__ import annotations

from dataclasses import dataclass

from covtool.core.errors import ParameterError
from covtool.core.options import (
    Config,
    check_choice,
    check_range,
    derived,
    option,
    parse_ints,
)
from covtool.models.fpn import FPN_BACKBONES, build_fpn
from covtool.models.layers import HEADS

#: keras.applications networks, by covtool name: the TEM benchmark fine-tuned DenseNet201,
#: InceptionV3, MobileNetV2, ResNet50, ResNet50V2, VGG16, VGG19 and Xception (its Table 2);
#: DenseNet-169 is COVID-CT's; DenseNet-121 is covtool's addition.
ZOO_NAMES: tuple[str, ...] = (
    "densenet121", "densenet169", "densenet201", "vgg16", "vgg19", "inceptionv3",
    "mobilenetv2", "resnet50", "resnet50v2", "xception",
)
MODEL_NAMES: tuple[str, ...] = ("custom", "fpn", "jcs", *ZOO_NAMES)
MODEL = "Model"  # the help panel of the model options


@dataclass(frozen=True)
class ModelConfig(Config):
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
    filters : tuple of int
        custom: the widths of the 4 residual blocks.
    final_filters : int
        custom: filters of the classification block's convolution.
    head : str
        zoo: the classification head (:data:`~covtool.models.layers.HEADS`): ``dense``, the TEM
        paper's (flatten, two hidden dense layers of ``head_units``, dense softmax), or ``pooled``,
        the standard ImageNet top (global average pooling, one dense softmax layer), which
        COVID-CT's DenseNet-169 has. Run folders written before the option existed are ``dense``.
    head_units : tuple of int
        Units of the two hidden fully connected layers of the dense head (custom and zoo).
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
    aspp_rates : tuple of int
        jcs: dilation rates of the ASPP's three atrous convolutions (docs/jcs.md).
    aspp_channels : int
        jcs: channels of every ASPP branch, its projection and the segmentation branch.
    """

    name: str = option("custom", "custom, fpn, jcs, or a keras.applications name (see "
                                 "'covtool models').", MODEL, flag="--model", metavar="NAME", required=True)
    input_shape: tuple[int, int, int] = derived((256, 256, 1))
    classes: int = derived(14)
    weights: str = option("none", "imagenet (Keras's download), none (from scratch), or a weights "
                                  "file PATH.", MODEL, metavar="imagenet|none|PATH")
    freeze: bool = option(False, "Freeze the pretrained backbone.", MODEL)
    filters: tuple[int, ...] = option((64, 128, 256, 512), "custom: widths of the 4 residual "
                                      "blocks.", MODEL, metavar="N,N,N,N", parse=parse_ints)
    final_filters: int = option(32, "custom: filters of the final convolution.", MODEL)
    head: str = option("dense", "zoo: the head: dense (TEM: flatten, two dense --head-units "
                                "layers, dense softmax) or pooled (global average pooling, one dense "
                                "softmax: COVID-CT's DenseNet-169).", MODEL, choices=HEADS)
    head_units: tuple[int, ...] = option((1024, 1024), "Units of the dense head's two hidden "
                                         "layers.", MODEL, metavar="N,N", parse=parse_ints)
    dropout: float = option(0.5, "Dropout of the head / the FPN outputs.", MODEL)
    block_dropout: float = option(0.25, "custom: dropout after each residual block.", MODEL)
    bn_momentum: float = option(0.99, "custom: batch-norm moving-average momentum (Keras 0.99; "
                                      "0.9 suits very short runs).", MODEL)
    backbone: str = option("resnet50v2", "fpn: the ResNet V2 backbone.", MODEL,
                           choices=FPN_BACKBONES)
    fpn_channels: int = option(256, "fpn: feature channels of the pyramid.", MODEL)
    aspp_rates: tuple[int, ...] = option((3, 6, 9), "jcs: the ASPP's three atrous rates (DeepLabv3's "
                                         "6,12,18 at stride 16, halved for DenseNet's 32).", MODEL,
                                         metavar="N,N,N", parse=parse_ints)
    aspp_channels: int = option(256, "jcs: channels of the ASPP and segmentation branches.", MODEL)


def minimum_input(name: str) -> int:
    """The smallest input side model ``name`` takes (its strides and valid convolutions)."""
    return {"inceptionv3": 75, "xception": 71, "fpn": 96}.get(name, 32)


def check_options(config: ModelConfig) -> None:
    """Refuse options that cannot build, whatever the input (names the field)."""
    if config.name not in MODEL_NAMES:
        raise ParameterError("name", f"unknown model '{config.name}' (choose from "
                                     f"{', '.join(MODEL_NAMES)})")
    check_choice(config, "backbone")
    check_choice(config, "head")
    if config.head != "dense" and config.name not in ZOO_NAMES:
        raise ParameterError("head", f"model '{config.name}' has its own head; the choice of head "
                                     f"is the keras.applications models'")
    for name in ("dropout", "block_dropout", "bn_momentum"):
        check_range(config, name, 0.0, 1.0, open_hi=True)
    for name in ("final_filters", "fpn_channels", "aspp_channels"):
        check_range(config, name, 1)
    if len(config.head_units) != 2 or min(config.head_units) < 1:
        raise ParameterError("head_units", f"the head needs two positive unit counts, got "
                                           f"{list(config.head_units)}")
    if len(config.aspp_rates) != 3 or min(config.aspp_rates) < 1:
        raise ParameterError("aspp_rates", f"the ASPP has three atrous convolutions: give 3 "
                                           f"positive rates, got {list(config.aspp_rates)}")
    if config.name == "custom" and (len(config.filters) != 4 or min(config.filters) < 1):
        raise ParameterError("filters", f"the custom CNN has 4 residual blocks: give 4 widths, "
                                        f"got {list(config.filters)}")


def validate(config: ModelConfig) -> None:
    """Refuse configurations that cannot build, with a message a user can act on."""
    check_options(config)
    h, w, c = config.input_shape
    if c not in (1, 3):
        raise ParameterError("channels", f"images need 1 (grey) or 3 (RGB) channels, got {c}")
    if config.classes < 2:
        raise ParameterError("classes", f"a classifier needs at least 2 classes, got {config.classes}")
    least = minimum_input(config.name)
    if min(h, w) < least:
        raise ParameterError("input_size", f"model '{config.name}' needs inputs of at least "
                                           f"{least}x{least}, got {h}x{w}")


def build_model(config: ModelConfig):
    """Build (and, for pretrained weights, load) the model a config describes.

    Returns
    -------
    keras.Model
        Input ``config.input_shape`` float32; output (classes,) softmax probabilities (float32 even
        under mixed precision); ``jcs``: the list ``[probabilities, mask (H, W, 1)]``.
    """
    validate(config)
    if config.name == "custom":
        from covtool.models.custom import build_custom

        model = build_custom(config)
    elif config.name == "fpn":
        model = build_fpn(config)
    elif config.name == "jcs":
        from covtool.models.jcs import build_jcs

        model = build_jcs(config)
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


def parameter_counts(config: ModelConfig) -> dict[str | None, int]:
    """Trainable parameters of the model ``config`` describes, by head.

    A zoo model: ``{head: count}`` for each of :data:`~covtool.models.layers.HEADS` (the backbone
    built without weights, the heads counted from its feature map's shape); any other model:
    ``{None: count}`` of the model built without weights.
    """
    from dataclasses import replace

    validate(config)
    if config.name in ZOO_NAMES:
        from covtool.models.zoo import zoo_parameters

        return zoo_parameters(config, count_trainable)
    return {None: count_trainable(build_model(replace(config, weights="none")))}
