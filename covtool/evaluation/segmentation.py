"""Dice and IoU of a segmenting model's predicted lesion masks (jcs) on rows that have a mask.

The predicted mask is the model's second output thresholded at 0.5; the true mask is the row's
``mask`` file (non-zero = lesion), read, oriented and resized exactly as training reads it
(:func:`covtool.training.readers.with_mask`, binarised at 0.5 after a resize). Both are at the
model's input size. Dice ``2|P∩T| / (|P| + |T|)`` and IoU ``|P∩T| / |P∪T|`` are computed per image
and averaged over the images (as Inf-Net and most lesion-segmentation papers report them); an
image whose true and predicted masks are both empty counts 1 (a correct "no lesion"). As that
raises the mean with every lesion-free row, ``dice_lesion`` and ``iou_lesion`` average over the
rows whose true mask has a lesion only (``lesion_masks`` of them), the figure lesion-segmentation
papers compare.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd


def dice_iou(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image Dice and IoU of boolean masks (N, ...) -> two float64 arrays (N,)."""
    p = np.asarray(pred, bool).reshape(len(pred), -1)
    t = np.asarray(true, bool).reshape(len(true), -1)
    inter = (p & t).sum(axis=1).astype(np.float64)
    total = p.sum(axis=1) + t.sum(axis=1).astype(np.float64)
    union = (p | t).sum(axis=1).astype(np.float64)
    empty = union == 0
    dice = np.where(empty, 1.0, 2.0 * inter / np.where(empty, 1.0, total))
    iou = np.where(empty, 1.0, inter / np.where(empty, 1.0, union))
    return dice, iou


def has_mask_output(model) -> bool:
    """Whether ``model`` predicts a mask besides its class probabilities (jcs)."""
    return len(model.outputs) > 1 and len(model.outputs[1].shape) == 4


def segmentation_metrics(model, cfg, df: pd.DataFrame, batch_size: int | None = None,
                         threshold: float = 0.5) -> dict:
    """``{"masks": n, "dice": mean, "iou": mean}`` over the rows of ``df`` with a ``mask`` (None
    where none has one); ``{}`` for a model without a mask output."""
    if not has_mask_output(model):
        return {}
    from covtool.training.dataset import make_dataset
    from covtool.training.table import image_table, mask_files
    from covtool.training.tf_errors import translated_tf_errors

    masked = df.iloc[[i for i, m in enumerate(mask_files(df)) if m]] if len(df) else df
    if masked.empty:
        return summary(np.zeros(0), np.zeros(0), np.zeros(0, bool))
    table = image_table(masked, list(cfg.classes), require_label=False, masks=True)
    ds = make_dataset(table, replace(cfg.pipeline, cache="none"), batch_size or cfg.batch_size)
    dice, iou, lesion = [], [], []
    with translated_tf_errors(model):
        for images, (_, truth) in ds:
            pred = np.asarray(model(images, training=False)[1]) >= threshold
            true = np.asarray(truth) > 0.5
            d, j = dice_iou(pred, true)
            dice.append(d)
            iou.append(j)
            lesion.append(true.reshape(len(true), -1).any(axis=1))
    return summary(np.concatenate(dice), np.concatenate(iou), np.concatenate(lesion))


def summary(dice: np.ndarray, iou: np.ndarray, lesion: np.ndarray) -> dict:
    """metrics.json's segmentation keys from per-image Dice, IoU and whether the true mask has a
    lesion: the means over every masked row and over the rows with a lesion (None where none)."""
    def mean(v: np.ndarray):
        return round(float(v.mean()), 6) if len(v) else None

    return {"masks": int(len(dice)), "dice": mean(dice), "iou": mean(iou),
            "lesion_masks": int(lesion.sum()), "dice_lesion": mean(dice[lesion]),
            "iou_lesion": mean(iou[lesion])}
