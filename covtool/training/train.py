"""The training loop: one ``fit`` call per epoch on a dataset that is a pure function of
``(seed, epoch)``, a checkpoint after every epoch, early stopping with restore-best, exact resume.

Why per-epoch ``fit`` calls: Keras's own callbacks keep state (early stopping's patience, the
shuffle iterator, dropout's random state) that a checkpoint does not hold. Here every piece of state
is either in ``checkpoints/last.npz`` (every variable: weights, optimizer moments and step count,
batch-norm statistics; the architecture is rebuilt from ``config.json``) or in
``checkpoints/state.json`` (epoch, history, best value, patience), and the randomness of an epoch (shuffle order, augmentation, dropout) is derived from the seed and the epoch
number. So ``--resume`` continues exactly where an interrupted run stopped.

Under a multi-worker strategy the epoch is run by ``training.multiworker`` instead of ``fit``
(Keras 3's ``fit`` does not run there); the loop around it is the same.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from covtool.core.errors import ManifestError, ParameterError
from covtool.core.scale import check_scale, manifest_scale
from covtool.models.build import validate as validate_model
from covtool.training import rundir
from covtool.training.config import (
    OPTIMIZERS,
    PipelineConfig,
    TrainConfig,
    parse_class_weights,
    validate,
)
from covtool.training.dataset import cached_base, make_dataset
from covtool.training.table import ImageTable, image_table, probe_shape
from covtool.training.tf_errors import release_pipelines, translate_tf_error


@dataclass
class TrainResult:
    """What a run did: ``config`` is the resolved configuration (classes, image size, channels,
    data scale filled in), as ``config.json`` holds it."""

    config: TrainConfig
    history: list[dict]
    best_epoch: int | None
    best_value: float | None
    stopped_early: bool
    run_dir: Path
    model: object = None


class TrainDisplay:
    """What a caller is shown of a run (the command line: stderr); every method may be left out."""

    def start(self, config: TrainConfig, images: int) -> None:
        """The run begins: its resolved config and its number of training images."""

    def epoch(self, row: dict) -> None:
        """An epoch's history row (with ``best``: whether it is the best epoch so far)."""

    def batches(self, epoch: int, steps: int):
        """A Keras callback showing the batches of one epoch, or ``None``."""
        return None


@dataclass
class _Rows:
    """The run's checked training and validation rows and the metric monitored on them."""

    train: ImageTable
    val: ImageTable | None
    monitor: str


def split_rows(df: pd.DataFrame, split: str) -> pd.DataFrame:
    if "split" not in df.columns:
        raise ManifestError("missing column split (train/val/test; see 'covtool split')",
                            df.attrs.get("manifest"), 1)
    return df[df["split"].astype(str).str.strip() == split]


def class_names(df: pd.DataFrame) -> list[str]:
    """The classes in a stable order (sorted names); the model's outputs follow it."""
    return sorted({str(v) for v in df["label"]})


def class_weight_map(spec: str, labels: np.ndarray, classes) -> dict[int, float] | None:
    """``none``, ``balanced`` (n / (k n_c), as scikit-learn) or ``name=w,name=w``."""
    parsed = parse_class_weights(spec)
    if parsed == "none":
        return None
    if parsed == "balanced":
        counts = np.bincount(labels, minlength=len(classes))
        n, k = counts.sum(), int((counts > 0).sum())
        return {i: (float(n) / (k * c) if c else 0.0) for i, c in enumerate(counts)}
    out = {i: 1.0 for i in range(len(classes))}
    for name, weight in parsed.items():
        if name not in classes:
            raise ParameterError("class_weights", f"{name!r} is not one of the classes "
                                                  f"({', '.join(classes)})")
        out[list(classes).index(name)] = weight
    return out


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int):
    import keras

    lr = cfg.learning_rate
    if cfg.cosine_period > 0:
        # COVID-CT: "cosine scheduling with a period of 10" (epochs); restarts every period
        lr = keras.optimizers.schedules.CosineDecayRestarts(
            cfg.learning_rate, first_decay_steps=cfg.cosine_period * steps_per_epoch,
            t_mul=1.0, m_mul=1.0, alpha=0.0)
    name = cfg.optimizer.lower()
    if name == "nadam":
        return keras.optimizers.Nadam(learning_rate=lr)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=cfg.momentum)
    raise ParameterError("optimizer", f"must be one of {', '.join(OPTIMIZERS)}; got {cfg.optimizer!r}")


def reseed_dropout(model, seed: int, epoch: int) -> None:
    """Set every random layer's seed state from ``(seed, epoch)``: dropout masks then do not
    depend on how many steps ran before (a checkpoint does not store that state)."""
    rng = np.random.default_rng([int(seed), int(epoch), 7])
    for layer in _walk(model):
        for gen in getattr(layer, "_seed_generators", []):  # Keras 3 keeps them here
            value = np.array([int(rng.integers(1, 2**31 - 1)), 0])
            gen.state.assign(value.astype(gen.state.dtype))


def _walk(model):
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _walk(layer)


def current_lr(optimizer) -> float:
    import keras

    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def _improved(value: float, best: float | None, monitor: str) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None:
        return True
    return value < best if "loss" in monitor else value > best


def resolve(config: TrainConfig, df: pd.DataFrame) -> TrainConfig:
    """``config`` with what the manifest decides filled in: the classes (sorted labels of the
    training rows), the image size (``input_size``, else the first training image's), the
    channels (3 where any training image has colour), the model's shape and the data scale.

    Every training and validation row is checked on the way (files, labels, symmetries).
    """
    return _prepare(config, df, stored=False)[0]


def _prepare(config: TrainConfig, df: pd.DataFrame, stored: bool) -> tuple[TrainConfig, _Rows]:
    """The resolved config and the checked rows; ``stored``: a resumed run's config, whose image
    shape and classes stay and whose data scale the rows must have."""
    manifest = df.attrs.get("manifest")
    train_df = split_rows(df, config.train_split)
    if train_df.empty:
        raise ManifestError(f"no rows with split '{config.train_split}' to train on", manifest)
    classes = tuple(config.classes) or tuple(class_names(train_df))
    if len(classes) < 2:
        raise ManifestError(f"training needs at least 2 classes, found {list(classes)}", manifest)
    masks = config.model.name == "jcs"  # a segmentation output: the rows' lesion masks
    train_table = image_table(train_df, list(classes), masks=masks)
    val_df = split_rows(df, config.val_split)
    scale = manifest_scale(pd.concat([train_df, val_df]), "training and validation rows")
    if stored:
        check_scale(config.data_scale or None, scale, "", manifest)
    val_table = image_table(val_df, list(classes), masks=masks) if len(val_df) else None
    pipe = config.pipeline if stored else _image_shape(config.pipeline, train_table)
    config = replace(config, classes=classes, pipeline=pipe,
                     data_scale=config.data_scale if stored else scale or "",
                     model=replace(config.model, classes=len(classes),
                                   input_shape=(*pipe.image_size, pipe.channels)))
    validate_model(config.model)  # the shape the images gave
    class_weight_map(config.class_weights, train_table.labels, classes)
    monitor = config.monitor
    if val_table is None and monitor.startswith("val_"):
        if config.early_stopping:
            raise ManifestError(f"early stopping on '{monitor}' needs rows with split "
                                f"'{config.val_split}'", manifest)
        monitor = monitor[4:]
    return config, _Rows(train_table, val_table, monitor)


def _image_shape(pipe: PipelineConfig, table: ImageTable) -> PipelineConfig:
    h, w, channels = probe_shape(table.paths[0], table.paths)
    if pipe.input_size:
        h = w = pipe.input_size
    return replace(pipe, image_size=(h, w), channels=channels, resize=pipe.input_size is not None)


def train(df: pd.DataFrame, run_dir: Path, config: TrainConfig, *, resume: bool = False,
          force: bool = False, display: TrainDisplay | None = None,
          stop_after: int | None = None) -> TrainResult:
    """Train ``config.model`` on the manifest's ``train`` rows, validating on its ``val`` rows.

    Parameters
    ----------
    df : DataFrame
        A manifest with ``path``, ``label``, ``split`` (and optionally ``transform``).
    run_dir : Path
        Written as DESIGN.md says; with ``resume`` the checkpoints there are continued and the
        stored configuration is used.
    config : TrainConfig
        The options, checked first (:func:`covtool.training.config.validate`); never changed:
        the resolved config (:func:`resolve`) is the result's ``config``.
    display : TrainDisplay, optional
        What the caller is shown (the command line's epoch lines and progress bar).
    stop_after : int, optional
        Stop after this many epochs of this call (simulates an interruption in tests).
    """
    run_dir = Path(run_dir)
    display = display or TrainDisplay()
    ckpt = run_dir / rundir.CHECKPOINTS
    state: dict = {}
    if resume:
        rundir.prepare(run_dir, force=force, resume=True)
        config = TrainConfig.from_dict(rundir.read_config(run_dir))
        state = json.loads((ckpt / rundir.STATE).read_text(encoding="utf-8"))
    else:
        validate(config)  # the command line has done so before reading the manifest
    config, rows = _prepare(config, df, stored=resume)
    display.start(config, len(rows.train))

    import keras
    import tensorflow as tf

    from covtool.models.build import build_model
    from covtool.training.distribute import is_chief, is_multi_worker, make_strategy
    from covtool.training.losses import compile_args

    # the strategy before the run folder: in multi-worker training only the chief prepares
    # (clears) the folder, which the workers share; the others would find the chief's files
    strategy = make_strategy(config.strategy)
    chief, multi = is_chief(strategy), is_multi_worker(strategy)
    if multi and len(rows.train) < config.batch_size:
        raise ParameterError("batch_size", f"{config.batch_size} is more than the "
                                           f"{len(rows.train)} training images (multi-worker "
                                           f"training drops a short last batch)")
    if chief and not resume:
        rundir.prepare(run_dir, force=force, resume=False)

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    policy = keras.mixed_precision.global_policy().name
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    model = None
    try:
        # multi-worker: whole global batches only (see training.multiworker)
        steps = (len(rows.train) // config.batch_size if multi
                 else max(1, math.ceil(len(rows.train) / config.batch_size)))
        with strategy.scope():
            if resume and not (ckpt / rundir.LAST).is_file() and (ckpt / rundir.OLD_LAST).is_file():
                model = rundir.load_model(ckpt / rundir.OLD_LAST, compile=True)  # an older run
            else:
                model = build_model(config.model)
                model.compile(optimizer=make_optimizer(config, steps),
                              **compile_args(config.model.name, config.cls_loss_weight,
                                             config.seg_loss_weight))
                if resume:
                    model.optimizer.build(model.trainable_variables)
                    rundir.read_variables(model, ckpt / rundir.LAST)
        if chief and not resume:
            rundir.write_json(run_dir / rundir.CONFIG,
                              {**config.to_dict(), "versions": rundir.versions()})
        epochs_runner = None
        if multi:
            from covtool.training.multiworker import MultiWorkerEpochs

            if not model.optimizer.built:  # a resumed run's is
                with strategy.scope():
                    model.optimizer.build(model.trainable_variables)
            epochs_runner = MultiWorkerEpochs(model, strategy)
        return _fit_loop(model, config, state, rows, run_dir, steps, chief, display, stop_after,
                         epochs_runner)
    except BaseException as exc:
        release_pipelines(exc, model)  # else the process can hang at exit (see there)
        if chief and not resume and not (ckpt / rundir.STATE).is_file():
            rundir.discard(run_dir)  # failed before its first checkpoint: nothing is left behind
        err = translate_tf_error(exc) if isinstance(exc, tf.errors.OpError) else None
        if err is not None:
            raise err from None
        raise
    finally:
        keras.mixed_precision.set_global_policy(policy)


def output_weights(ds, weights: dict[int, float]):
    """``(images, (labels, masks))`` batches with the class weights as the classification
    output's sample weights (and 1 for the segmentation output's): Keras's ``class_weight``
    takes models with one output only."""
    import tensorflow as tf

    table = tf.constant([float(weights.get(i, 1.0)) for i in range(max(weights) + 1)], tf.float32)

    def add(images, targets):
        labels = targets[0]
        w = tf.gather(table, tf.cast(labels, tf.int32))
        return images, targets, (w, tf.ones_like(w))

    return ds.map(add)


def _fit_loop(model, cfg: TrainConfig, state: dict, rows: _Rows, run_dir: Path, steps: int,
              chief: bool, display: TrainDisplay, stop_after, epochs_runner=None) -> TrainResult:
    from covtool.training.losses import history_name

    train_table, val_table, monitor = rows.train, rows.val, rows.monitor
    ckpt = run_dir / rundir.CHECKPOINTS
    history: list[dict] = list(state.get("history", []))
    best: float | None = state.get("best")
    best_epoch: int | None = state.get("best_epoch")
    wait: int = int(state.get("wait", 0))
    start: int = int(state.get("epoch", 0))
    stopped = bool(state.get("stopped_early", False))
    weights = class_weight_map(cfg.class_weights, train_table.labels, cfg.classes)
    train_base = val_base = None
    if cfg.pipeline.cache != "none":
        train_base = cached_base(train_table, cfg.pipeline)
    val_ds = None
    if val_table is not None:
        if cfg.pipeline.cache != "none":
            val_base = cached_base(val_table, cfg.pipeline.cache_for("val"))
        val_ds = make_dataset(val_table, cfg.pipeline, cfg.batch_size, base=val_base)
    writer = rundir.CheckpointWriter()
    try:
        ran = 0
        epoch = start
        for epoch in range(start, cfg.epochs):
            if stopped or (stop_after is not None and ran >= stop_after):
                break
            reseed_dropout(model, cfg.seed, epoch)
            ds = make_dataset(train_table, cfg.pipeline, cfg.batch_size, augment=cfg.augment,
                              shuffle=True, seed=cfg.seed, epoch=epoch, base=train_base,
                              drop_remainder=epochs_runner is not None)
            fit_weights = weights
            if weights and train_table.masks is not None:  # Keras: class weights of one output only
                ds, fit_weights = output_weights(ds, weights), None
            progress = display.batches(epoch, steps)
            callbacks = [progress] if progress is not None else []
            row = {"epoch": epoch + 1}
            if epochs_runner is not None:  # multi-worker: Keras 3's fit does not run there
                row.update(epochs_runner.run(
                    ds, steps, val_ds,
                    math.ceil(len(val_table) / cfg.batch_size) if val_table is not None else 0,
                    weights, callbacks[0] if callbacks else None))
            else:
                fit = model.fit(ds, validation_data=val_ds, initial_epoch=epoch, epochs=epoch + 1,
                                verbose=0, class_weight=fit_weights, callbacks=callbacks,
                                shuffle=False)
                row.update({history_name(k): float(v[-1]) for k, v in fit.history.items()})
            row["lr"] = current_lr(model.optimizer)
            history.append(row)
            value = row.get(monitor)
            improved = _improved(value, best, monitor)
            if improved:
                best, best_epoch, wait = float(value), epoch + 1, 0
            else:
                wait += 1
            if cfg.early_stopping and wait >= cfg.early_stopping:
                stopped = True
            if chief:
                # the values now; the files are written while the next epoch trains
                writer.submit(partial(_write_checkpoint, rundir.snapshot(model), len(model.variables),
                                      improved, run_dir, {
                                          "epoch": epoch + 1, "history": list(history), "best": best,
                                          "best_epoch": best_epoch, "wait": wait,
                                          "stopped_early": stopped, "monitor": monitor}))
            display.epoch({**row, "best": best_epoch == epoch + 1})
            ran += 1
        finished = stopped or (len(history) >= cfg.epochs)
        writer.wait()  # the checkpoint files are read next
        if finished and chief:
            if cfg.restore_best and best_epoch is not None:
                if (ckpt / rundir.BEST).is_file():
                    rundir.read_variables(model, ckpt / rundir.BEST, optimizer=False)
                elif (ckpt / rundir.OLD_BEST).is_file():  # an older run, resumed
                    model.load_weights(ckpt / rundir.OLD_BEST)
            rundir.save_model(model, run_dir / rundir.MODEL)
            if history:
                rundir.plot_history(run_dir / rundir.CURVE, history)
        return TrainResult(cfg, history, best_epoch, best, stopped, run_dir, model)
    finally:
        writer.close()  # an interrupted run keeps its last whole checkpoint


def _write_checkpoint(values: list, n_model: int, improved: bool, run_dir: Path,
                      state: dict) -> None:
    """One epoch's checkpoint: the variables (the model's first ``n_model`` of them are the
    best epoch's when ``improved``), then ``state.json``, then the history."""
    ckpt = run_dir / rundir.CHECKPOINTS
    if improved:
        rundir.write_snapshot(values[:n_model], ckpt / rundir.BEST)
        rundir.remove_old(ckpt, rundir.OLD_BEST)
    rundir.write_snapshot(values, ckpt / rundir.LAST)
    rundir.remove_old(ckpt, rundir.OLD_LAST)
    rundir.write_json(ckpt / rundir.STATE, state)
    rundir.write_history(run_dir / rundir.HISTORY, state["history"])
