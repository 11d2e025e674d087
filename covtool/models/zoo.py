"""keras.applications backbones with the TEM paper's head (its Fig. 2, bottom)."""

from __future__ import annotations

from covtool.models.layers import as_three_channels, classification_head
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


def build_zoo(config):
    """A keras.applications network without its top, then flatten and the 3-layer dense head.

    Grey inputs are repeated to three channels (see :func:`as_three_channels`); ``freeze`` makes
    the backbone untrainable (its batch normalisation then runs in inference mode).
    """
    import keras

    h, w, _ = config.input_shape
    backbone = imagenet_backbone(application(config.name), config.name, (h, w, 3), config.weights)
    backbone.name = f"backbone_{config.name}"
    backbone.trainable = not config.freeze
    inputs = keras.Input(shape=config.input_shape, name="image")
    x = as_three_channels(inputs)
    x = backbone(x, training=False) if config.freeze else backbone(x)
    outputs = classification_head(x, config)
    return keras.Model(inputs, outputs, name=config.name)
