"""Small pieces shared by the builders: grey-to-RGB input and the papers' classification head."""

from __future__ import annotations


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
