"""COVID-CT's joint classification and segmentation network (JCS; Zhao et al., Figure 6).

"Given the image, we first use DenseNet-169 to extract visual features. Then the visual features
are fed into an atrous spatial pyramid pooling (ASPP) layer [...]. These feature maps are fed into
two branches: a segmentation branch for predicting lesion segmentation mask and a classification
branch for prediction class label. The predicted segmentation mask is fed into the classification
branch as additional information." What the paper leaves open is covtool's choice (docs/jcs.md):

* features: DenseNet-169 without its top (``relu``, stride 32, 1664 channels);
* ASPP as DeepLabv3 (Chen et al. 2017): a 1x1 convolution, three 3x3 atrous convolutions
  (``aspp_rates``, default 3, 6, 9: DeepLabv3's 6, 12, 18 at output stride 16, halved for
  DenseNet's stride 32, the same field of view in input pixels) and image pooling (global mean,
  1x1 convolution, spread back over the map), each with batch normalisation and ReLU, concatenated
  and projected by a 1x1 convolution (``aspp_channels`` = 256 everywhere);
* segmentation branch (DeepLabv3's head): 3x3 convolution, batch normalisation, ReLU, a 1x1
  convolution to one lesion logit per feature-map pixel; output ``mask``: the logits upsampled
  bilinearly to the input size, then a sigmoid (N, H, W, 1);
* classification branch: the ASPP features concatenated with the same features weighted by the
  predicted mask at the feature-map size (the sigmoid of the low-resolution logits),
  ``cls_features``; global average pooling; a dense softmax, output ``predictions``.

The model's outputs are the list ``[predictions, mask]``: the class probabilities stay the first
(primary) output, which eval, predict and explain read.
"""

from __future__ import annotations

from covtool.models.layers import as_three_channels
from covtool.models.weights import imagenet_backbone
from covtool.models.zoo import application

#: the Grad-CAM target: the maps the classifier pools (features and mask-weighted features)
GRADCAM_LAYER = "cls_features"


def _conv_bn_relu(x, filters: int, kernel: int, name: str, dilation: int = 1):
    from keras import layers

    x = layers.Conv2D(filters, kernel, padding="same", dilation_rate=dilation, use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def aspp(x, channels: int, rates: tuple[int, ...], prefix: str = "aspp"):
    """DeepLabv3's atrous spatial pyramid pooling of a (N, h, w, C) map -> (N, h, w, channels)."""
    from keras import layers

    h, w = int(x.shape[1]), int(x.shape[2])
    branches = [_conv_bn_relu(x, channels, 1, f"{prefix}_1x1")]
    branches += [_conv_bn_relu(x, channels, 3, f"{prefix}_rate{r}", dilation=r) for r in rates]
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}_pool")(x)
    # no batch norm on the pooled 1x1 map: a training batch of one image has variance 0 there,
    # which would make the branch its BN offset for every image (PyTorch's DeepLab refuses
    # that batch); a biased 1x1 convolution and ReLU instead
    pooled = layers.Conv2D(channels, 1, name=f"{prefix}_pool_conv")(pooled)
    pooled = layers.Activation("relu", name=f"{prefix}_pool_relu")(pooled)
    branches.append(layers.UpSampling2D((h, w), name=f"{prefix}_pool_spread")(pooled))
    x = layers.Concatenate(name=f"{prefix}_concat")(branches)
    return _conv_bn_relu(x, channels, 1, f"{prefix}_project")


def feature_extractor(config):
    """DenseNet-169 without its top at the config's size (3 channels in), ImageNet weights where
    asked: ``backbone_densenet169`` (the name weights files are loaded into)."""
    h, w, _ = config.input_shape
    backbone = imagenet_backbone(application("densenet169"), "densenet169", (h, w, 3),
                                 config.weights)
    backbone.name = "backbone_densenet169"
    return backbone


def build_jcs(config):
    """The JCS network of a :class:`~covtool.models.build.ModelConfig` (``name="jcs"``).

    Returns
    -------
    keras.Model
        Input ``config.input_shape``; outputs ``[predictions (N, classes) softmax,
        mask (N, H, W, 1) sigmoid]``, both float32 even under mixed precision.
    """
    import keras
    from keras import layers

    h, w, _ = config.input_shape
    backbone = feature_extractor(config)
    backbone.trainable = not config.freeze
    inputs = keras.Input(shape=config.input_shape, name="image")
    x = as_three_channels(inputs)
    features = backbone(x, training=False) if config.freeze else backbone(x)
    shared = aspp(features, config.aspp_channels, tuple(config.aspp_rates))

    seg = _conv_bn_relu(shared, config.aspp_channels, 3, "seg")
    logits = layers.Conv2D(1, 1, name="seg_logits")(seg)
    mask_small = layers.Activation("sigmoid", name="seg_mask_small")(logits)
    up = layers.Resizing(h, w, interpolation="bilinear", name="seg_upsample")(logits)
    mask = layers.Activation("sigmoid", dtype="float32", name="mask")(up)

    weighted = layers.Multiply(name="cls_mask_weighted")([shared, mask_small])
    cls = layers.Concatenate(name=GRADCAM_LAYER)([shared, weighted])
    cls = layers.GlobalAveragePooling2D(name="cls_pool")(cls)
    probs = layers.Dense(config.classes, activation="softmax", dtype="float32",
                         name="predictions")(cls)
    return keras.Model(inputs, [probs, mask], name="jcs")
