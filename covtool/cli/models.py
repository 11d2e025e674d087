"""List the models with their trainable parameter counts (one row per model: the name, then the
count) for an input size and a class count.

A keras.applications model has one row per head (dense, the TEM paper's; pooled, the standard one),
the head third."""

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
    head: Annotated[str | None, typer.Option(
        "--head", help="keras.applications models: only this head (dense or pooled); default: "
                       "both.")] = None,
) -> None:
    from covtool.models.build import MODEL_NAMES, ModelConfig, minimum_input, validate
    from covtool.models.layers import HEADS

    if head is not None and head not in HEADS:
        raise UsageError(f"--head: must be one of {', '.join(HEADS)}, got '{head}'")

    names = model or list(MODEL_NAMES)
    for name in names:
        if name not in MODEL_NAMES:
            raise UsageError(f"--model: unknown model '{name}' (choose from {', '.join(MODEL_NAMES)})")
    configs, too_small = [], []
    for name in names:  # every option checked before TensorFlow starts
        cfg = ModelConfig(name=name, input_shape=(input_size, input_size, channels), classes=classes)
        try:
            validate(cfg)
        except ParameterError as exc:
            if exc.param != "input_size" or model:   # a model asked for by name must build
                raise
            too_small.append((name, exc))
            continue
        configs.append(cfg)
    if not configs:
        least = min(minimum_input(n) for n in names)
        raise ParameterError("input_size", f"no model takes {input_size}x{input_size} inputs (the "
                                           f"smallest any takes is {least}x{least})")
    for name, exc in too_small:   # listing every model: those too small for it are left out
        console.warn(f"{name}: {exc.shown_with(lambda p: '--' + p.replace('_', '-'))}")
    load_tensorflow()
    from covtool.models.build import parameter_counts

    width = max(len(c.name) for c in configs)
    for cfg in configs:
        for name, count in parameter_counts(cfg).items():
            if name is None:
                typer.echo(f"{cfg.name:<{width}}  {count}")
            elif head in (None, name):
                typer.echo(f"{cfg.name:<{width}}  {count:<10}  {name}")
        _clear_session()


def _clear_session() -> None:
    import keras

    keras.backend.clear_session()

