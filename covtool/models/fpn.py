"""COVID-CTset's network (Rahimzadeh et al.): a feature pyramid on ResNet50V2.

Following the authors' published code (see /work/shared/REFERENCES.md): C3, C4, C5 are the
ResNet V2 layers ``conv4_block1_preact_relu``, ``conv5_block1_preact_relu`` and ``post_relu``
(strides 16, 32, 32); the pyramid joins levels by **concatenation** instead of addition:

* P5 = 1x1 conv(C5); its nearest-neighbour upsampling to C4's size feeds P4; P5 = 3x3 conv (same)
* P4 = concat(up(P5), 1x1 conv(C4)); upsampled to C3's size for P3; P4 = 3x3 conv (valid)
* P3 = concat(up(P4), 1x1 conv(C3)); P3 = 3x3 conv (valid)
* P6 = 3x3 stride-2 conv(C5); P7 = 3x3 stride-2 conv(ReLU(P6))

Each of P3..P7: flatten, dropout 0.5, dense 2 with ReLU; the five are concatenated (10 units) and
a dense softmax classifies. Every one of these dense layers, the softmax one too, starts from the
authors' normal initialiser (mean 0, std 0.001), not Keras's Glorot default.
"""

from __future__ import annotations

from covtool.core.errors import ParameterError
from covtool.models.layers import as_three_channels
from covtool.models.weights import imagenet_backbone
from covtool.models.zoo import application

PYRAMID_LAYERS = ("conv4_block1_preact_relu", "conv5_block1_preact_relu", "post_relu")


#: the ResNet V2 backbones of COVID-CTset's FPN (the authors used ResNet50V2)
FPN_BACKBONES: tuple[str, ...] = ("resnet50v2", "resnet101v2", "resnet152v2")

def build_fpn(config):
    import keras
    from keras import layers

    if config.backbone not in FPN_BACKBONES:
        raise ParameterError("backbone", f"must be one of {', '.join(FPN_BACKBONES)}; got "
                                         f"{config.backbone!r}")
    h, w, _ = config.input_shape
    base = imagenet_backbone(application(config.backbone), config.backbone, (h, w, 3), config.weights)
    features = keras.Model(base.input, [base.get_layer(n).output for n in PYRAMID_LAYERS],
                           name=f"backbone_{config.backbone}")
    features.trainable = not config.freeze
    inputs = keras.Input(shape=config.input_shape, name="image")
    x = as_three_channels(inputs)
    c3, c4, c5 = features(x, training=False) if config.freeze else features(x)
    n = config.fpn_channels

    def up_like(t, ref, name):
        return layers.Resizing(ref.shape[1], ref.shape[2], interpolation="nearest", name=name)(t)

    p5 = layers.Conv2D(n, 1, name="C5_reduced")(c5)
    p5_up = up_like(p5, c4, "P5_upsampled")
    p5 = layers.Conv2D(n, 3, padding="same", name="P5")(p5)
    p4 = layers.Conv2D(n, 1, name="C4_reduced")(c4)
    p4 = layers.Concatenate(name="P4_merged")([p5_up, p4])
    p4_up = up_like(p4, c3, "P4_upsampled")
    p4 = layers.Conv2D(n, 3, name="P4")(p4)
    p3 = layers.Conv2D(n, 1, name="C3_reduced")(c3)
    p3 = layers.Concatenate(name="P3_merged")([p4_up, p3])
    p3 = layers.Conv2D(n, 3, name="P3")(p3)
    p6 = layers.Conv2D(n, 3, strides=2, padding="same", name="P6")(c5)
    p7 = layers.Activation("relu", name="C6_relu")(p6)
    p7 = layers.Conv2D(n, 3, strides=2, padding="same", name="P7")(p7)
    def normal():  # the authors' RandomNormal(0, 0.001), one instance per layer
        return keras.initializers.RandomNormal(mean=0.0, stddev=0.001)

    outs = []
    for level, p in zip((3, 4, 5, 6, 7), (p3, p4, p5, p6, p7), strict=True):
        y = layers.Flatten(name=f"P{level}_flatten")(p)
        y = layers.Dropout(config.dropout, name=f"P{level}_dropout")(y)
        y = layers.Dense(2, activation="relu", name=f"P{level}_dense",
                         kernel_initializer=normal())(y)
        outs.append(y)
    x = layers.Concatenate(name="pyramid_concat")(outs)
    outputs = layers.Dense(config.classes, activation="softmax", dtype="float32", name="predictions",
                           kernel_initializer=normal())(x)
    return keras.Model(inputs, outputs, name="fpn")
