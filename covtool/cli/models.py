"""List the models with their trainable parameter counts (one row per model: the name, then the
count) for an input size and a class count."""

from __future__ import annotations

from typing import Annotated

import typer

from covtool.cli.common import load_tensorflow
from covtool.core import console
from covtool.core.errors import ParameterError, UsageError


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
            raise UsageError(f"--model: unknown model '{name}' (choose from {', '.join(MODEL_NAMES)})")
    width = max(len(n) for n in names)
    for name in names:
        cfg = ModelConfig(name=name, input_shape=(input_size, input_size, channels), classes=classes)
        try:
            count = count_trainable(build_model(cfg))
        except ParameterError as exc:  # too small an input for this model: the others still run
            console.warn(f"{name}: {exc.shown_with(lambda p: '--' + p.replace('_', '-'))}")
            continue
        typer.echo(f"{name:<{width}}  {count}")
        _clear_session()


def _clear_session() -> None:
    import keras

    keras.backend.clear_session()

