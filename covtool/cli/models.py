"""List the models with their trainable parameter counts (one row per model: the name, then the
count) for an input size and a class count."""

from __future__ import annotations

from covtool.cli.train import models_command

__all__ = ["models_command"]
