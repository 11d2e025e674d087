"""Small pieces shared by the builders: grey-to-RGB input and the papers' classification heads."""

from __future__ import annotations

#: the zoo's heads: ``dense`` the TEM paper's (flatten and three dense layers), ``pooled`` the
#: standard ImageNet top (global average pooling, one dense layer: COVID-CT's DenseNet-169)
HEADS: tuple[str, ...] = ("dense", "pooled")


def as_three_channels(x):
    """Repeat a grey (H, W, 1) tensor to (H, W, 3) for ImageNet backbones.

    covtool's choice for every pretrained backbone: the first convolution keeps its ImageNet
    weights and sees the grey value on all three colour inputs, which equals a 1-channel
    convolution whose kernel is the sum of the three colour kernels. (The COVID-CTset authors
    instead load ImageNet weights by layer name and skip the first convolution, which leaves it
    randomly initialised.) A ``Concatenate`` layer serialises in ``model.keras`` without custom code.
    """
    import keras

    if x.shape[-1] == 3:
        return x
    return keras.layers.Concatenate(axis=-1, name="grey_to_rgb")([x, x, x])


def classification_head(x, config, prefix: str = "head"):
    """The TEM paper's head: flatten, dense, dropout, dense, dense softmax.

    "3 fully connected layers with dropout between the first two layers" — with 1024 units each
    this reproduces Table 2's trainable-parameter counts of every keras.applications model exactly
    (e.g. VGG16 49,334,094 and DenseNet201 144,987,022 at 256x256, 14 classes).
    """
    import keras

    u1, u2 = config.head_units
    x = keras.layers.Flatten(name=f"{prefix}_flatten")(x)
    x = keras.layers.Dense(u1, activation="relu", name=f"{prefix}_dense1")(x)
    x = keras.layers.Dropout(config.dropout, name=f"{prefix}_dropout")(x)
    x = keras.layers.Dense(u2, activation="relu", name=f"{prefix}_dense2")(x)
    # float32 output keeps the softmax and the loss stable under mixed precision
    return keras.layers.Dense(config.classes, activation="softmax", dtype="float32",
                              name="predictions")(x)


def pooled_head(x, config, prefix: str = "head"):
    """The standard top of an ImageNet network: global average pooling, one dense softmax layer.

    What keras.applications builds with ``include_top=True`` and torchvision's DenseNet-169 (the
    COVID-CT authors' model: its ``classifier`` is one linear layer on the pooled features); no
    hidden layer and no dropout, so ``head_units`` and ``dropout`` do not apply.
    """
    import keras

    x = keras.layers.GlobalAveragePooling2D(name=f"{prefix}_pool")(x)
    return keras.layers.Dense(config.classes, activation="softmax", dtype="float32",
                              name="predictions")(x)


def head_parameters(features: tuple[int, int, int], config, head: str) -> int:
    """Trainable parameters of ``head`` on a backbone's (H, W, C) feature map, counted without
    building it (the TEM head of DenseNet-169 at 480x480 has 383 M: slow to initialise)."""
    h, w, c = features
    k = config.classes
    if head == "pooled":
        return c * k + k
    u1, u2 = config.head_units
    return h * w * c * u1 + u1 + u1 * u2 + u2 + u2 * k + k
