"""The TEM virus benchmark's custom CNN (Matuszewski & Sintorn 2021, Fig. 2), trained from scratch.

"4 residual blocks of double convolutional layers with batch normalization, max-pooling, and
dropout, followed by a classification block composed of the final convolutional layer, and 3 fully
connected layers with dropout between the first two layers."

The paper gives no widths. covtool's defaults (documented in docs/train.md):

* residual block ``i`` (widths 64, 128, 256, 512): 3x3 conv - BN - ReLU - 3x3 conv - BN, a 1x1
  conv - BN shortcut, add, ReLU, 2x2 max-pooling, dropout 0.25;
* classification block: 3x3 conv with 32 filters - BN - ReLU, flatten, dense 1024 (ReLU),
  dropout 0.5, dense 1024 (ReLU), dense softmax.

At 256x256x1 with 14 classes this has 14,464,174 trainable parameters, 1.3 % below the paper's
14,651,401 (the head alone matches the paper's zoo models exactly).
"""

from __future__ import annotations

from covtool.models.layers import classification_head


def residual_block(x, filters: int, dropout: float, name: str, bn_momentum: float = 0.99):
    """Two 3x3 convolutions with batch normalisation, a projected shortcut, pooling, dropout.

    (H, W, C) -> (H // 2, W // 2, filters).
    """
    import keras
    from keras import layers

    shortcut = layers.Conv2D(filters, 1, padding="same", name=f"{name}_shortcut_conv")(x)
    shortcut = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_shortcut_bn")(shortcut)
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn1")(y)
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn2")(y)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    y = layers.Activation("relu", name=f"{name}_relu2")(y)
    y = layers.MaxPooling2D(2, name=f"{name}_pool")(y)
    return keras.layers.Dropout(dropout, name=f"{name}_dropout")(y)


def build_custom(config):
    """Build the custom CNN for ``config.input_shape`` and ``config.classes``."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=config.input_shape, name="image")
    x = inputs
    for i, f in enumerate(config.filters, start=1):
        x = residual_block(x, int(f), config.block_dropout, name=f"block{i}",
                           bn_momentum=config.bn_momentum)
    x = layers.Conv2D(config.final_filters, 3, padding="same", name="final_conv")(x)
    x = layers.BatchNormalization(momentum=config.bn_momentum, name="final_bn")(x)
    x = layers.Activation("relu", name="final_relu")(x)
    outputs = classification_head(x, config)
    return keras.Model(inputs, outputs, name="custom")
