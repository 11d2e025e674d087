"""Losses and compile arguments of the models covtool trains.

A classifier: sparse categorical cross-entropy and accuracy. The joint classification and
segmentation model (jcs, COVID-CT): "the sum of a classification loss and a segmentation loss",
weights 1 and 1 by default (``TrainConfig.cls_loss_weight``, ``seg_loss_weight``). The
segmentation loss is :class:`MaskedBinaryCrossentropy`: a row without a lesion mask (its target
-1 everywhere, :func:`covtool.training.dataset.split_mask`) contributes nothing to it, so those
rows train the classifier only.
"""

from __future__ import annotations

import keras

#: the model output names of a jcs model, in output order
JCS_OUTPUTS = ("predictions", "mask")


@keras.saving.register_keras_serializable(package="covtool")
class MaskedBinaryCrossentropy(keras.losses.Loss):
    """Per-pixel binary cross-entropy of a predicted mask, pixels whose target is negative ignored.

    Each row's value is the mean over its labelled pixels (0 for a row with none); the batch's
    loss is the mean over its rows (Keras's ``sum_over_batch_size``), so a row without a mask
    counts 0 and a row with one counts as much as in a batch of masked rows alone (as a sample
    weight of 0 and 1 would). Exactly 0, with a zero gradient, for a batch without masks.
    """

    def __init__(self, name: str = "masked_binary_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        from keras import ops

        y_true = ops.cast(y_true, "float32")
        y_pred = ops.clip(ops.cast(y_pred, "float32"), 1e-7, 1.0 - 1e-7)
        valid = ops.cast(y_true >= 0, "float32")
        target = ops.maximum(y_true, 0.0)
        bce = -(target * ops.log(y_pred) + (1.0 - target) * ops.log(1.0 - y_pred)) * valid
        axes = tuple(range(1, len(y_pred.shape)))
        return ops.sum(bce, axis=axes) / ops.maximum(ops.sum(valid, axis=axes), 1.0)


def compile_args(model_name: str, cls_weight: float = 1.0, seg_weight: float = 1.0) -> dict:
    """``model.compile`` keyword arguments (less the optimizer) for model ``model_name``."""
    accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    classification = keras.losses.SparseCategoricalCrossentropy()
    if model_name != "jcs":
        return {"loss": classification, "metrics": [accuracy]}
    return {"loss": [classification, MaskedBinaryCrossentropy()],
            "loss_weights": [float(cls_weight), float(seg_weight)], "metrics": [[accuracy], []]}


def history_name(key: str) -> str:
    """A Keras log name as covtool's history calls it: a jcs model's ``predictions_accuracy``
    is ``accuracy`` (the monitored metric), its ``predictions_loss`` ``cls_loss`` and its
    ``mask_loss`` ``seg_loss``; ``loss`` stays the weighted sum."""
    for keras_name, name in (("predictions_accuracy", "accuracy"), ("predictions_loss", "cls_loss"),
                             ("mask_loss", "seg_loss")):
        if key.endswith(keras_name):
            return key[: -len(keras_name)] + name
    return key
