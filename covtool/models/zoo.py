"""keras.applications backbones with a classification head: the TEM paper's (its Fig. 2, bottom:
flatten and three dense layers, ``head="dense"``) or the standard pooled one (``head="pooled"``:
global average pooling and one dense layer, COVID-CT's DenseNet-169)."""

from __future__ import annotations

from covtool.models.layers import (
    HEADS,
    as_three_channels,
    classification_head,
    head_parameters,
    pooled_head,
)
from covtool.models.weights import imagenet_backbone

#: covtool name -> keras.applications constructor name
APPLICATIONS: dict[str, str] = {
    "densenet121": "DenseNet121", "densenet169": "DenseNet169", "densenet201": "DenseNet201",
    "vgg16": "VGG16", "vgg19": "VGG19", "inceptionv3": "InceptionV3", "mobilenetv2": "MobileNetV2",
    "resnet50": "ResNet50", "resnet50v2": "ResNet50V2", "xception": "Xception",
    "resnet101v2": "ResNet101V2", "resnet152v2": "ResNet152V2",
}


def application(name: str):
    import keras

    return getattr(keras.applications, APPLICATIONS[name])


def zoo_backbone(config):
    """The keras.applications network of ``config.name`` without its top, at the config's size."""
    h, w, _ = config.input_shape
    backbone = imagenet_backbone(application(config.name), config.name, (h, w, 3), config.weights)
    backbone.name = f"backbone_{config.name}"
    backbone.trainable = not config.freeze
    return backbone


def build_zoo(config):
    """A keras.applications network without its top, then the head ``config.head`` names.

    Grey inputs are repeated to three channels (see :func:`as_three_channels`); ``freeze`` makes
    the backbone untrainable (its batch normalisation then runs in inference mode).
    """
    import keras

    backbone = zoo_backbone(config)
    inputs = keras.Input(shape=config.input_shape, name="image")
    x = as_three_channels(inputs)
    x = backbone(x, training=False) if config.freeze else backbone(x)
    head = pooled_head if config.head == "pooled" else classification_head
    return keras.Model(inputs, head(x, config), name=config.name)


def zoo_parameters(config, count) -> dict[str, int]:
    """Trainable parameters of the zoo model ``config`` describes with each head (:data:`HEADS`).

    Builds the backbone alone, without weights (``count(model)`` counts its trainable
    parameters), and counts the heads from its feature map's shape: the same numbers as building
    each whole model, without initialising the TEM head's hundreds of millions of weights.
    """
    from dataclasses import replace

    backbone = zoo_backbone(replace(config, weights="none"))
    features = tuple(int(n) for n in backbone.output.shape[1:])
    base = count(backbone)
    return {head: base + head_parameters(features, config, head) for head in HEADS}
