"""Run a trained model (a run folder) over manifest rows."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from covtool.core.errors import CovtoolError
from covtool.training import rundir
from covtool.training.config import TrainConfig
from covtool.training.dataset import make_dataset
from covtool.training.table import image_table
from covtool.training.tf_errors import translated_tf_errors


def load_run(run_dir: str | Path):
    """``(TrainConfig, keras.Model)`` of a run folder, checked against each other."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CovtoolError("no such run folder", run_dir)
    cfg = TrainConfig.from_dict(rundir.read_config(run_dir))
    if not cfg.classes:
        raise CovtoolError("config.json lists no classes", run_dir / rundir.CONFIG)
    model_path = run_dir / rundir.MODEL
    if not model_path.is_file():
        raise CovtoolError("no model.keras (training has not finished; resume the run)", run_dir)
    model = rundir.load_model(model_path)
    out_units = int(model.outputs[0].shape[-1])
    in_shape = tuple(int(v) for v in model.inputs[0].shape[1:])
    if out_units != len(cfg.classes) or in_shape != tuple(cfg.model.input_shape):
        raise CovtoolError(f"model.keras (input {in_shape}, {out_units} outputs) does not match "
                           f"config.json (input {tuple(cfg.model.input_shape)}, "
                           f"{len(cfg.classes)} classes)", model_path)
    return cfg, model


def class_probs(outputs):
    """The class probabilities of a model's outputs: the output itself, or the first (primary)
    of several (jcs: ``[probabilities, mask]``)."""
    if isinstance(outputs, dict):
        outputs = outputs.get("predictions", next(iter(outputs.values())))
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    return outputs


def predict_probs(model, cfg: TrainConfig, df: pd.DataFrame, batch_size: int | None = None,
                  require_label: bool = True):
    """Class probabilities for the rows of ``df``.

    Returns
    -------
    probs : ndarray (N, K), float32
        Columns in ``cfg.classes`` order.
    labels : ndarray (N,), int32
        True class indices (-1 where a row has no label).
    """
    table = image_table(df, cfg.classes, require_label=require_label)
    if len(table) == 0:
        return np.zeros((0, len(cfg.classes)), np.float32), table.labels
    ds = make_dataset(table, replace(cfg.pipeline, cache="none"), batch_size or cfg.batch_size,
                      with_labels=False)
    with translated_tf_errors(model):
        probs = class_probs(model.predict(ds, verbose=0))
    return np.asarray(probs, dtype=np.float32), table.labels


def make_predictor(model, cfg: TrainConfig, batch_size: int | None = None):
    """A reusable ``predict(df) -> probs`` for many small calls (one per patient).

    ``model.predict`` builds and traces a new predict function for each call whose last batch
    has a new size; here one ``tf.function`` with ``reduce_retracing`` serves every call, so the
    per-call cost is the images' alone.
    """
    import tensorflow as tf

    forward = tf.function(lambda x: class_probs(model(x, training=False)), reduce_retracing=True)
    pipe = replace(cfg.pipeline, cache="none")
    bs = batch_size or cfg.batch_size

    def predict(df: pd.DataFrame) -> np.ndarray:
        table = image_table(df, cfg.classes, require_label=False)
        if len(table) == 0:
            return np.zeros((0, len(cfg.classes)), np.float32)
        ds = make_dataset(table, pipe, bs, with_labels=False)
        with translated_tf_errors(model):
            return np.concatenate([np.asarray(forward(batch), np.float32) for batch in ds])

    return predict


def make_array_predictor(model, cfg: TrainConfig, batch_size: int | None = None):
    """``predict(images) -> probs`` for images already in memory (CT slices read from a DICOM
    series or a NIfTI volume, or converted to the run's value scale), prepared exactly as
    :func:`make_predictor` prepares files: the run's channels, its size (resized bilinear,
    antialiased, where the run resizes; else a different size is an error), its normalisation.

    images : sequence of ndarray (H, W) or (H, W, C), any real dtype -> ndarray (N, K), float32
    """
    import tensorflow as tf

    from covtool.training.dataset import normalise

    forward = tf.function(lambda x: class_probs(model(x, training=False)), reduce_retracing=True)
    pipe = cfg.pipeline
    bs = batch_size or cfg.batch_size

    def predict(images) -> np.ndarray:
        out = []
        for start in range(0, len(images), bs):
            batch = [prepare_array(img, pipe, "slice") for img in images[start:start + bs]]
            out.append(np.asarray(forward(normalise(tf.stack(batch), pipe)), np.float32))
        return np.concatenate(out) if out else np.zeros((0, len(cfg.classes)), np.float32)

    return predict


def prepare_array(img: np.ndarray, pipe, what: str = "image", path=None):
    """One image in memory at the run's channels and size, as its input pipeline makes a file's
    (resized bilinear, antialiased, where the run resizes; else another size is an error naming
    ``path``), before normalisation: a float32 (H, W, C) tensor."""
    import tensorflow as tf

    from covtool.core.imageio import to_channels

    h, w = pipe.image_size
    img = np.asarray(to_channels(img, pipe.channels), np.float32)
    if pipe.resize:
        return tf.image.resize(img, (h, w), method="bilinear", antialias=True)
    if img.shape[:2] != (h, w):
        raise CovtoolError(f"{what} size {img.shape[0]}x{img.shape[1]} differs from the run's "
                           f"input {h}x{w} (the run was trained without resizing)", path)
    return tf.constant(img)
