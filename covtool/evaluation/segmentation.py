"""Dice and IoU of a segmenting model's predicted lesion masks (jcs) on rows that have a mask.

The predicted mask is the model's second output thresholded at 0.5; the true mask is the row's
``mask`` file (non-zero = lesion), read, oriented and resized exactly as training reads it
(:func:`covtool.training.readers.with_mask`, binarised at 0.5 after a resize). Both are at the
model's input size. Dice ``2|P∩T| / (|P| + |T|)`` and IoU ``|P∩T| / |P∪T|`` are computed per image
and averaged over the images (as Inf-Net and most lesion-segmentation papers report them); an
image whose true and predicted masks are both empty counts 1 (a correct "no lesion").
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
        return {"masks": 0, "dice": None, "iou": None}
    table = image_table(masked, list(cfg.classes), require_label=False, masks=True)
    ds = make_dataset(table, replace(cfg.pipeline, cache="none"), batch_size or cfg.batch_size)
    dice, iou = [], []
    with translated_tf_errors(model):
        for images, (_, truth) in ds:
            pred = np.asarray(model(images, training=False)[1]) >= threshold
            d, j = dice_iou(pred, np.asarray(truth) > 0.5)
            dice.append(d)
            iou.append(j)
    dice_all, iou_all = np.concatenate(dice), np.concatenate(iou)
    return {"masks": int(len(dice_all)), "dice": round(float(dice_all.mean()), 6),
            "iou": round(float(iou_all.mean()), 6)}
