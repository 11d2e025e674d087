"""Train a classifier on a manifest's train rows (validating on its val rows) into a run folder.

Rows need 'path', 'label' and 'split' (train/val/test); a 'transform' column written by
'covtool balance' is applied at load time. The run folder gets config.json, model.keras,
history.csv, training-curve.png and checkpoints/ (for --resume).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from covtool.cli.common import Force, load_tensorflow
from covtool.core import console
from covtool.core.errors import UsageError
from covtool.core.manifest import read_manifest

MODELS_DOC = """List the models with their trainable parameter counts (one row per model: the name,
then the count) for an input size and a class count."""


def parse_ints(text: str, option: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{option} expects whole numbers separated by commas, got {text!r}") from None


def parse_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--range expects LO,HI, got {text!r}") from None
    if hi <= lo:
        raise UsageError(f"--range {text}: HI must be above LO")
    return lo, hi


def models_command(
    input_size: Annotated[int, typer.Option("--input-size", help="Square input size in pixels.")] = 256,
    classes: Annotated[int, typer.Option("--classes", help="Number of classes.")] = 14,
    channels: Annotated[int, typer.Option("--channels", help="Image channels (1 grey, 3 RGB).")] = 1,
    model: Annotated[list[str] | None, typer.Option(
        "--model", help="Only this model (repeatable); default: every model.")] = None,
) -> None:
    load_tensorflow()
    from covtool.models.build import MODEL_NAMES, ModelConfig, build_model, count_trainable

    names = model or list(MODEL_NAMES)
    for name in names:
        if name not in MODEL_NAMES:
            raise UsageError(f"unknown model '{name}' (choose from {', '.join(MODEL_NAMES)})")
    width = max(len(n) for n in names)
    for name in names:
        cfg = ModelConfig(name=name, input_shape=(input_size, input_size, channels), classes=classes)
        try:
            count = count_trainable(build_model(cfg))
        except UsageError as exc:
            console.warn(f"{name}: {exc}")
            continue
        typer.echo(f"{name:<{width}}  {count}")
        _clear_session()


def _clear_session() -> None:
    import keras

    keras.backend.clear_session()


def _epoch_progress():
    """A Keras callback factory showing batches of one epoch on a rich progress bar."""
    import keras

    from covtool.core.progress import make_progress

    class EpochProgress(keras.callbacks.Callback):
        def __init__(self, epoch: int, steps: int):
            super().__init__()
            self.epoch, self.steps = epoch, steps

        def on_train_begin(self, logs=None):
            self.progress = make_progress()
            self.progress.start()
            self.task = self.progress.add_task(f"epoch {self.epoch + 1}", total=self.steps)

        def on_train_batch_end(self, batch, logs=None):
            self.progress.update(self.task, completed=batch + 1)

        def on_train_end(self, logs=None):
            self.progress.stop()

    return EpochProgress


def _epoch_line(row: dict) -> str:
    parts = [f"epoch {row['epoch']}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if key in row:
            parts.append(f"{key} {row[key]:.4f}")
    parts.append(f"lr {row['lr']:.3g}")
    return "  ".join(parts) + ("  [green]best[/green]" if row.get("best") else "")


def train_command(
    manifest: Annotated[str, typer.Argument(help="Manifest with path, label, split ('-' for stdin).")],
    run: Annotated[Path, typer.Option("-r", "--run", metavar="RUNDIR", help="The run folder to write.")],
    model: Annotated[str | None, typer.Option(
        "--model", help="custom, fpn, or a keras.applications name (see 'covtool models').")] = None,
    weights: Annotated[str, typer.Option(
        "--weights", help="imagenet (Keras's download), none (from scratch), or a weights file PATH.")] = "none",
    freeze: Annotated[bool, typer.Option("--freeze", help="Freeze the pretrained backbone.")] = False,
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs (COVID-CTset 50; TEM 300 from scratch, 50 transfer).")] = 50,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Batch size (COVID-CTset 14; COVID-CT 16).")] = 14,
    input_size: Annotated[int | None, typer.Option(
        "--input-size", help="Resize every image to N x N (COVID-CT 480); default: the images' own size, no resizing.")] = None,
    optimizer: Annotated[str, typer.Option("--optimizer", help="nadam, adam or sgd.")] = "nadam",
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 1e-4,
    momentum: Annotated[float, typer.Option("--momentum", help="SGD momentum.")] = 0.9,
    cosine_period: Annotated[int, typer.Option(
        "--cosine-period", help="Cosine learning-rate schedule restarting every N epochs (COVID-CT 10); 0 is constant.")] = 0,
    class_weights: Annotated[str, typer.Option(
        "--class-weights", help="none, balanced, or NAME=W,NAME=W.")] = "none",
    early_stopping: Annotated[int, typer.Option(
        "--early-stopping", metavar="PATIENCE", help="Stop after PATIENCE epochs without improvement of --monitor; 0 is off.")] = 0,
    monitor: Annotated[str, typer.Option("--monitor", help="Metric for the best epoch and early stopping.")] = "val_accuracy",
    restore_best: Annotated[bool, typer.Option(
        "--restore-best/--no-restore-best", help="model.keras gets the best epoch's weights.")] = True,
    seed: Annotated[int, typer.Option("--seed", help="Seed of weights, shuffling, augmentation, dropout.")] = 0,
    normalize: Annotated[str, typer.Option(
        "--normalize", help="standardize (per image; TEM), range (fixed --range; CT) or none (raw values; COVID-CTset).")] = "standardize",
    value_range: Annotated[str, typer.Option("--range", metavar="LO,HI", help="Values mapped to 0..1 by --normalize range.")] = "0,5000",
    augment: Annotated[str, typer.Option(
        "--augment", help="Augmentation preset: none, covid-ctset, covid-ct, tem (none on the fly).")] = "none",
    hflip: Annotated[bool | None, typer.Option("--hflip/--no-hflip", help="Random left-right flips.")] = None,
    vflip: Annotated[bool | None, typer.Option("--vflip/--no-vflip", help="Random up-down flips.")] = None,
    rotation: Annotated[float | None, typer.Option("--rotation", help="Random rotation range in degrees.")] = None,
    zoom: Annotated[float | None, typer.Option("--zoom", help="Random zoom range (0.05 = 5 %).")] = None,
    shift: Annotated[float | None, typer.Option("--shift", help="Random shift range (fraction of size).")] = None,
    shear: Annotated[float | None, typer.Option("--shear", help="Random shear range (radians).")] = None,
    crop_scale: Annotated[float | None, typer.Option("--crop-scale", help="Random resized crop, smallest area fraction.")] = None,
    brightness: Annotated[float | None, typer.Option("--brightness", help="Random brightness factor range.")] = None,
    contrast: Annotated[float | None, typer.Option("--contrast", help="Random contrast factor range.")] = None,
    cache: Annotated[str, typer.Option("--cache", help="Cache decoded images: none, memory, or a file prefix.")] = "none",
    filters: Annotated[str, typer.Option("--filters", help="custom: widths of the 4 residual blocks.")] = "64,128,256,512",
    final_filters: Annotated[int, typer.Option("--final-filters", help="custom: filters of the final convolution.")] = 32,
    head_units: Annotated[str, typer.Option("--head-units", help="Units of the head's two hidden dense layers.")] = "1024,1024",
    dropout: Annotated[float, typer.Option("--dropout", help="Dropout of the head / the FPN outputs.")] = 0.5,
    block_dropout: Annotated[float, typer.Option("--block-dropout", help="custom: dropout after each residual block.")] = 0.25,
    bn_momentum: Annotated[float, typer.Option(
        "--bn-momentum", help="custom: batch-norm moving-average momentum (Keras 0.99; 0.9 suits very short runs).")] = 0.99,
    backbone: Annotated[str, typer.Option("--backbone", help="fpn: resnet50v2, resnet101v2 or resnet152v2.")] = "resnet50v2",
    mixed_precision: Annotated[bool, typer.Option("--mixed-precision", help="float16 compute (GPU).")] = False,
    strategy: Annotated[str, typer.Option("--strategy", help="auto, mirrored or multiworker (TF_CONFIG or Slurm).")] = "auto",
    deterministic: Annotated[bool, typer.Option(
        "--deterministic", help="Deterministic TensorFlow ops (bit-identical reruns; slower on GPU).")] = False,
    train_split: Annotated[str, typer.Option("--train-split", help="Split value of the training rows.")] = "train",
    val_split: Annotated[str, typer.Option("--val-split", help="Split value of the validation rows.")] = "val",
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its checkpoints (its stored options win).")] = False,
    force: Force = False,
) -> None:
    load_tensorflow()
    from covtool.models.build import ModelConfig, validate
    from covtool.training.pipeline import AUGMENT_PRESETS, AugmentConfig, PipelineConfig
    from covtool.training.train import TrainConfig

    if not resume and model is None:
        raise UsageError("--model is required (see 'covtool models')")
    if augment not in AUGMENT_PRESETS:
        raise UsageError(f"--augment must be one of {', '.join(AUGMENT_PRESETS)}, got '{augment}'")
    if not resume and not force:
        _check_new_run(run)  # before any work; with --force, train() clears the old run
    df = read_manifest(manifest, required=["path", "label", "split"])
    preset = AUGMENT_PRESETS[augment].to_dict()
    overrides = dict(hflip=hflip, vflip=vflip, rotation=rotation, zoom=zoom, shift=shift, shear=shear,
                     crop_scale=crop_scale, brightness=brightness, contrast=contrast)
    aug = AugmentConfig(**{k: (v if overrides.get(k) is None else overrides[k]) for k, v in preset.items()})
    cfg = TrainConfig()
    if not resume:
        from covtool.training.pipeline import probe_shape
        from covtool.training.train import split_rows

        rows = split_rows(df, train_split)
        if rows.empty:
            raise UsageError(f"no rows with split '{train_split}' in {manifest}")
        first = rows["path"].iloc[0]
        from covtool.training.pipeline import image_table

        image_table(rows.iloc[:1], None, require_label=False)  # a clear error for a missing file
        h, w, c = probe_shape(first, rows["path"])  # channels: any colour image -> 3
        size = (input_size, input_size) if input_size else (h, w)
        pipeline = PipelineConfig(image_size=size, channels=c, resize=input_size is not None,
                                  normalize=normalize, value_range=parse_range(value_range), cache=cache)
        mcfg = ModelConfig(name=model, input_shape=(*size, c), classes=2, weights=weights, freeze=freeze,
                           filters=parse_ints(filters, "--filters"), final_filters=final_filters,
                           head_units=parse_ints(head_units, "--head-units"), dropout=dropout,
                           block_dropout=block_dropout, bn_momentum=bn_momentum, backbone=backbone)
        validate(mcfg)
        cfg = TrainConfig(model=mcfg, pipeline=pipeline, augment=aug, optimizer=optimizer,
                          learning_rate=lr, momentum=momentum, cosine_period=cosine_period,
                          batch_size=batch_size, epochs=epochs, class_weights=class_weights,
                          early_stopping=early_stopping, monitor=monitor, restore_best=restore_best,
                          seed=seed, mixed_precision=mixed_precision, strategy=strategy,
                          deterministic=deterministic, train_split=train_split, val_split=val_split,
                          manifest=str(Path(manifest).resolve()) if manifest != "-" else "-")
        console.info(f"training [bold]{model}[/bold] on {len(rows)} images "
                     f"({size[0]}x{size[1]}x{c}) -> {run}")
    _train(df, run, cfg, resume=resume, force=force)


def _check_new_run(run: Path) -> None:
    from covtool.core.errors import OutputExistsError
    from covtool.training import rundir

    for name in rundir.RUN_FILES:
        if (run / name).exists():
            raise OutputExistsError(run / name)


def _train(df, run: Path, cfg, resume: bool, force: bool) -> None:
    from covtool.core.progress import enabled
    from covtool.training.train import train

    result = train(df, run, cfg, resume=resume, force=force,
                   on_epoch=lambda row: console.info(_epoch_line(row)),
                   progress_factory=_epoch_progress() if enabled() else None)
    best = (f"best epoch {result.best_epoch} ({result.best_value:.4f})"
            if result.best_epoch is not None else "no best epoch")
    stop = ", stopped early" if result.stopped_early else ""
    console.info(f"[green]done[/green]: {len(result.history)} epochs, {best}{stop}; "
                 f"model in {run / 'model.keras'}")
