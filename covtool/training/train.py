"""The training loop: one ``fit`` call per epoch on a dataset that is a pure function of
``(seed, epoch)``, a checkpoint after every epoch, early stopping with restore-best, exact resume.

Why per-epoch ``fit`` calls: Keras's own callbacks keep state (early stopping's patience, the
shuffle iterator, dropout's random state) that a checkpoint does not hold. Here every piece of state
is either in ``checkpoints/last.keras`` (weights, optimizer moments and step count, batch-norm
statistics) or in ``checkpoints/state.json`` (epoch, history, best value, patience), and the
randomness of an epoch (shuffle order, augmentation, dropout) is derived from the seed and the epoch
number. So ``--resume`` continues exactly where an interrupted run stopped.

Under a multi-worker strategy the epoch is run by ``training.multiworker`` instead of ``fit``
(Keras 3's ``fit`` does not run there); the loop around it is the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from covtool.core.errors import ManifestError, UsageError
from covtool.core.scale import check_scale, manifest_scale
from covtool.models.build import ModelConfig
from covtool.training import rundir
from covtool.training.pipeline import (
    AugmentConfig,
    ImageTable,
    PipelineConfig,
    image_table,
    make_dataset,
    translate_tf_error,
)

OPTIMIZERS = ("nadam", "adam", "sgd")


@dataclass
class TrainConfig:
    """Every option of a training run (written to ``config.json``)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    classes: list[str] = field(default_factory=list)
    optimizer: str = "nadam"
    learning_rate: float = 1e-4
    momentum: float = 0.9
    cosine_period: int = 0
    batch_size: int = 14
    epochs: int = 50
    class_weights: str = "none"
    early_stopping: int = 0
    monitor: str = "val_accuracy"
    restore_best: bool = True
    seed: int = 0
    mixed_precision: bool = False
    strategy: str = "auto"
    deterministic: bool = False
    train_split: str = "train"
    val_split: str = "val"
    manifest: str = ""
    #: the value scale of the training rows (their ``value_scale`` column, covtool.core.scale), '' where
    #: the manifest has none; eval and patient-diagnose check their data against it
    data_scale: str = ""

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("model", "pipeline", "augment")}
        return {"model": self.model.to_dict(), "pipeline": self.pipeline.to_dict(),
                "augment": self.augment.to_dict(), **d}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        rest = {k: v for k, v in d.items() if k in cls.__dataclass_fields__
                and k not in ("model", "pipeline", "augment")}
        return cls(model=ModelConfig.from_dict(d.get("model", {})),
                   pipeline=PipelineConfig.from_dict(d.get("pipeline", {})),
                   augment=AugmentConfig(**d.get("augment", {})), **rest)


@dataclass
class TrainResult:
    history: list[dict]
    best_epoch: int | None
    best_value: float | None
    stopped_early: bool
    run_dir: Path
    model: object = None


def split_rows(df: pd.DataFrame, split: str) -> pd.DataFrame:
    if "split" not in df.columns:
        raise ManifestError("missing column split (train/val/test; see 'covtool split')",
                            df.attrs.get("manifest"), 1)
    return df[df["split"].astype(str).str.strip() == split]


def class_names(df: pd.DataFrame) -> list[str]:
    """The classes in a stable order (sorted names); the model's outputs follow it."""
    return sorted({str(v) for v in df["label"]})


def class_weight_map(spec: str, labels: np.ndarray, classes: list[str]) -> dict[int, float] | None:
    """``none``, ``balanced`` (n / (k n_c), as scikit-learn) or ``name=w,name=w``."""
    spec = (spec or "none").strip()
    if spec == "none":
        return None
    if spec == "balanced":
        counts = np.bincount(labels, minlength=len(classes))
        n, k = counts.sum(), int((counts > 0).sum())
        return {i: (float(n) / (k * c) if c else 0.0) for i, c in enumerate(counts)}
    out = {i: 1.0 for i in range(len(classes))}
    for part in spec.split(","):
        name, _, value = part.partition("=")
        if name.strip() not in classes or not value:
            raise UsageError(f"--class-weights: expected none, balanced or NAME=W,... with NAME in "
                             f"{', '.join(classes)}; got '{part}'")
        try:
            out[classes.index(name.strip())] = float(value)
        except ValueError:
            raise UsageError(f"--class-weights: '{value}' is not a number") from None
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
    raise UsageError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got '{cfg.optimizer}'")


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


def train(df: pd.DataFrame, run_dir: Path, cfg: TrainConfig, *, resume: bool = False,
          force: bool = False, on_epoch: Callable[[dict], None] | None = None,
          progress_factory: Callable | None = None, stop_after: int | None = None) -> TrainResult:
    """Train ``cfg.model`` on the manifest's ``train`` rows, validating on its ``val`` rows.

    Parameters
    ----------
    df : DataFrame
        A manifest with ``path``, ``label``, ``split`` (and optionally ``transform``).
    run_dir : Path
        Written as DESIGN.md says; with ``resume`` the checkpoints there are continued and the
        stored configuration is used.
    on_epoch : callable, optional
        Called with each epoch's history row (for the command line's display).
    progress_factory : callable, optional
        ``progress_factory(epoch, steps)`` -> a Keras callback showing progress within an epoch.
    stop_after : int, optional
        Stop after this many epochs of this call (simulates an interruption in tests).
    """
    import keras
    import tensorflow as tf

    from covtool.models.build import build_model
    from covtool.training.distribute import is_chief, is_multi_worker, make_strategy

    run_dir = Path(run_dir)
    # the strategy first: in multi-worker training only the chief prepares (clears) the run
    # folder, which the workers share; the others would find the chief's files and refuse
    strategy = make_strategy(cfg.strategy)
    chief, multi = is_chief(strategy), is_multi_worker(strategy)
    if resume:  # checks only; a new run's folder is prepared once its input is known to be good
        rundir.prepare(run_dir, force=force, resume=True)
    ckpt = run_dir / rundir.CHECKPOINTS
    state: dict = {}
    if resume:
        stored = rundir.read_config(run_dir)
        cfg = TrainConfig.from_dict(stored)
        import json

        state = json.loads((ckpt / rundir.STATE).read_text(encoding="utf-8"))
    train_df = split_rows(df, cfg.train_split)
    if train_df.empty:
        raise ManifestError(f"no rows with split '{cfg.train_split}' to train on",
                            df.attrs.get("manifest"))
    if not cfg.classes:
        cfg.classes = class_names(train_df)
    if len(cfg.classes) < 2:
        raise ManifestError(f"training needs at least 2 classes, found {cfg.classes}",
                            df.attrs.get("manifest"))
    cfg.model.classes = len(cfg.classes)
    train_table = image_table(train_df, cfg.classes)
    if multi and len(train_table) < cfg.batch_size:
        raise UsageError(f"multi-worker training drops a short last batch: --batch-size "
                         f"{cfg.batch_size} is more than the {len(train_table)} training images")
    val_df = split_rows(df, cfg.val_split)
    given_scale = manifest_scale(pd.concat([train_df, val_df]), "training and validation rows")
    if resume:
        check_scale(cfg.data_scale or None, given_scale, "", df.attrs.get("manifest"))
    else:
        cfg.data_scale = given_scale or ""
    val_table = image_table(val_df, cfg.classes) if len(val_df) else None
    monitor = cfg.monitor
    if val_table is None and monitor.startswith("val_"):
        if cfg.early_stopping:
            raise ManifestError(f"early stopping on '{monitor}' needs rows with split "
                                f"'{cfg.val_split}'", df.attrs.get("manifest"))
        monitor = monitor[4:]
    cfg.model.input_shape = (*cfg.pipeline.image_size, cfg.pipeline.channels)
    if chief and not resume:
        rundir.prepare(run_dir, force=force, resume=False)

    keras.utils.set_random_seed(cfg.seed)
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    policy = keras.mixed_precision.global_policy().name
    if cfg.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        # multi-worker: whole global batches only (see training.multiworker)
        steps = (len(train_table) // cfg.batch_size if multi
                 else max(1, math.ceil(len(train_table) / cfg.batch_size)))
        with strategy.scope():
            if resume:
                model = rundir.load_model(ckpt / rundir.LAST, compile=True)
            else:
                model = build_model(cfg.model)
                model.compile(optimizer=make_optimizer(cfg, steps),
                              loss=keras.losses.SparseCategoricalCrossentropy(),
                              metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        if chief and not resume:
            rundir.write_json(run_dir / rundir.CONFIG, {**cfg.to_dict(), "versions": rundir.versions()})
        epochs_runner = None
        if multi:
            from covtool.training.multiworker import MultiWorkerEpochs

            with strategy.scope():
                model.optimizer.build(model.trainable_variables)
            epochs_runner = MultiWorkerEpochs(model, strategy)
        return _fit_loop(model, cfg, state, train_table, val_table, run_dir, monitor, steps, chief,
                         on_epoch, progress_factory, stop_after, epochs_runner)
    except BaseException as exc:
        if chief and not resume and not (ckpt / rundir.STATE).is_file():
            rundir.discard(run_dir)  # failed before its first checkpoint: nothing is left behind
        err = translate_tf_error(exc) if isinstance(exc, tf.errors.OpError) else None
        if err is not None:
            raise err from None
        raise
    finally:
        keras.mixed_precision.set_global_policy(policy)


def _fit_loop(model, cfg: TrainConfig, state: dict, train_table: ImageTable,
              val_table: ImageTable | None, run_dir: Path, monitor: str, steps: int, chief: bool,
              on_epoch, progress_factory, stop_after, epochs_runner=None) -> TrainResult:
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
        from covtool.training.pipeline import cached_base

        train_base = cached_base(train_table, cfg.pipeline)
    val_ds = None
    if val_table is not None:
        if cfg.pipeline.cache != "none":
            from covtool.training.pipeline import cached_base

            val_base = cached_base(val_table, replace_cache(cfg.pipeline, "val"))
        val_ds = make_dataset(val_table, cfg.pipeline, cfg.batch_size, base=val_base)
    ran = 0
    epoch = start
    for epoch in range(start, cfg.epochs):
        if stopped or (stop_after is not None and ran >= stop_after):
            break
        reseed_dropout(model, cfg.seed, epoch)
        ds = make_dataset(train_table, cfg.pipeline, cfg.batch_size, augment=cfg.augment,
                          shuffle=True, seed=cfg.seed, epoch=epoch, base=train_base,
                          drop_remainder=epochs_runner is not None)
        callbacks = [progress_factory(epoch, steps)] if progress_factory else []
        row = {"epoch": epoch + 1}
        if epochs_runner is not None:  # multi-worker: Keras 3's fit does not run there
            row.update(epochs_runner.run(
                ds, steps, val_ds,
                math.ceil(len(val_table) / cfg.batch_size) if val_table is not None else 0,
                weights, callbacks[0] if callbacks else None))
        else:
            fit = model.fit(ds, validation_data=val_ds, initial_epoch=epoch, epochs=epoch + 1,
                            verbose=0, class_weight=weights, callbacks=callbacks, shuffle=False)
            row.update({k: float(v[-1]) for k, v in fit.history.items()})
        row["lr"] = current_lr(model.optimizer)
        history.append(row)
        value = row.get(monitor)
        if _improved(value, best, monitor):
            best, best_epoch, wait = float(value), epoch + 1, 0
            if chief:
                rundir.save_weights(model, ckpt / rundir.BEST)
        else:
            wait += 1
        if cfg.early_stopping and wait >= cfg.early_stopping:
            stopped = True
        if chief:
            rundir.save_model(model, ckpt / rundir.LAST)
            rundir.write_json(ckpt / rundir.STATE, {
                "epoch": epoch + 1, "history": history, "best": best, "best_epoch": best_epoch,
                "wait": wait, "stopped_early": stopped, "monitor": monitor})
            rundir.write_history(run_dir / rundir.HISTORY, history)
        if on_epoch:
            on_epoch({**row, "best": best_epoch == epoch + 1})
        ran += 1
    finished = stopped or (len(history) >= cfg.epochs)
    if finished and chief:
        if cfg.restore_best and best_epoch is not None and (ckpt / rundir.BEST).is_file():
            model.load_weights(ckpt / rundir.BEST)
        rundir.save_model(model, run_dir / rundir.MODEL)
        if history:
            rundir.plot_history(run_dir / rundir.CURVE, history)
    return TrainResult(history, best_epoch, best, stopped, run_dir, model)


def replace_cache(cfg: PipelineConfig, suffix: str) -> PipelineConfig:
    """The same pipeline with a cache file of its own (validation beside training)."""
    if cfg.cache in ("none", "memory"):
        return cfg
    return PipelineConfig(**{**cfg.__dict__, "cache": f"{cfg.cache}-{suffix}"})


def require_columns(df: pd.DataFrame) -> None:
    missing = [c for c in ("path", "label") if c not in df.columns]
    if missing:
        raise ManifestError(f"missing column {', '.join(missing)}", df.attrs.get("manifest"), 1)

