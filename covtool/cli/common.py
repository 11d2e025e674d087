"""Options shared by several commands, so that each means the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Force = Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")]
SkipBad = Annotated[bool, typer.Option(
    "--skip-bad", help="Record a bad item's error in the manifest's 'error' column and go on, instead of stopping.")]
ShardOpt = Annotated[str | None, typer.Option(
    "--shard", metavar="K/N",
    help="Process only share K of N (0-based) for cluster array jobs; defaults to "
         "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT when those are set.")]
OutManifest = Annotated[str, typer.Option(
    "-o", "--output", metavar="OUT.csv", help="Output manifest ('-' for stdout).")]
OutDir = Annotated[Path, typer.Option("-d", "--outdir", metavar="OUTDIR", help="Folder for the files written.")]


def load_tensorflow() -> None:
    """First thing in a deep-learning command: import TensorFlow without its C++ chatter."""
    from covtool.core import console
    from covtool.models.runtime import import_tensorflow

    import_tensorflow(quiet=not console.state.debug)
