"""Train a classifier on a manifest's train rows (validating on its val rows) into a run folder.

Rows need 'path', 'label' and 'split' (train/val/test); a 'transform' column written by
'covtool balance' is applied at load time. The run folder gets config.json, model.keras,
history.csv, training-curve.png and checkpoints/ (for --resume).
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from covtool.cli.common import Force, load_tensorflow, old_option, renamed
from covtool.core import console
from covtool.core.errors import ParameterError
from covtool.core.manifest import read_manifest
from covtool.core.options import from_options, option_fields
from covtool.training.config import TrainConfig, validate


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


def _display(run: Path):
    """What ``covtool train`` shows on stderr: the run's start, a line per epoch, a progress bar."""
    from covtool.core.progress import enabled
    from covtool.training.train import TrainDisplay

    progress = _epoch_progress() if enabled() else None

    class Display(TrainDisplay):
        def start(self, config: TrainConfig, images: int) -> None:
            (h, w), c = config.pipeline.image_size, config.pipeline.channels
            console.info(f"training [bold]{config.model.name}[/bold] on {images} images "
                         f"({h}x{w}x{c}) -> {run}")

        def epoch(self, row: dict) -> None:
            console.info(_epoch_line(row))

        def batches(self, epoch: int, steps: int):
            return progress(epoch, steps) if progress else None

    return Display()


def train_command(manifest: str, run: Path, resume: bool = False, force: bool = False,
                  **options: Any) -> None:
    """Its parameters (:data:`TRAIN_SIGNATURE`) are the four below and every option of
    :class:`TrainConfig`, named by field (so a :class:`ParameterError` shows as its flag)."""
    old = options.pop("old_strategy", None)   # --distribute's old name, for one release
    if old is not None:
        given = None if options.get("strategy") == "auto" else options.get("strategy")
        options["strategy"] = renamed(given, old, "--distribute", "--strategy")
    config = from_options(TrainConfig, options)
    if not resume:  # a resumed run's stored options win
        if options.get("name") is None:
            raise ParameterError("name", "a new run needs a model (see 'covtool models')")
        validate(config)
        if not force:
            _check_new_run(run)  # before any work; with --force, train() clears the old run
    df = read_manifest(manifest, required=["path", "label", "split"])
    config = replace(config, manifest=str(Path(manifest).resolve()) if manifest != "-" else "-")
    load_tensorflow()
    from covtool.training.train import train

    result = train(df, run, config, resume=resume, force=force, display=_display(run))
    best = (f"best epoch {result.best_epoch} ({result.best_value:.4f})"
            if result.best_epoch is not None else "no best epoch")
    stop = ", stopped early" if result.stopped_early else ""
    console.info(f"[green]done[/green]: {len(result.history)} epochs, {best}{stop}; "
                 f"model in {run / 'model.keras'}")


def _check_new_run(run: Path) -> None:
    from covtool.core.errors import OutputExistsError
    from covtool.training import rundir

    for name in rundir.RUN_FILES:
        if (run / name).exists():
            raise OutputExistsError(run / name)


def config_parameters() -> list[inspect.Parameter]:
    """One typer option per :class:`TrainConfig` option field (nested configs' included), in
    its help panel, named by the field; text options for list values, ``None`` for "the
    preset's" and for required values."""
    params = []
    for f, spec, hint in option_fields(TrainConfig):
        flag = spec.flag_of(f.name)
        default = f.default
        if spec.parse is not None:
            hint, default = str, spec.text(f.default)
        if spec.required or spec.from_preset:
            hint, default = hint | None, None
        info: dict[str, Any] = {"help": spec.help, "rich_help_panel": spec.group}
        if spec.from_preset:
            info["help"] += " Default: the preset's."
        if hint in (bool, bool | None):
            info["metavar"] = ""  # a flag takes no value: no <bool>
            if spec.negatable:
                flag = f"{flag}/--no-{flag[2:]}"
        elif spec.metavar or spec.choices:
            info["metavar"] = spec.metavar or "|".join(spec.choices)
        option = typer.Option(flag, **info)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=Annotated[hint, option]))
    return params


_RUN_PARAMETERS = [
    inspect.Parameter("manifest", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[str, typer.Argument(
        help="Manifest with path, label, split ('-' for stdin).")]),
    inspect.Parameter("run", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[Path, typer.Option(
        "-r", "--run", metavar="RUNDIR", help="The run folder to write.")]),
    inspect.Parameter("resume", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
        bool, typer.Option("--resume", metavar="", help="Continue an interrupted run from its "
                           "checkpoints (its stored options win).")]),
    inspect.Parameter("force", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Force),
    inspect.Parameter("old_strategy", inspect.Parameter.KEYWORD_ONLY, default=None,
                      annotation=old_option("--strategy", str)),
]
#: what typer reads instead of ``train_command``'s own parameters
TRAIN_SIGNATURE = inspect.Signature([*_RUN_PARAMETERS, *config_parameters()])
train_command.__signature__ = TRAIN_SIGNATURE  # type: ignore[attr-defined]
