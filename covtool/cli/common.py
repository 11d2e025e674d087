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


def done_line(what: str, output: str, table: dict | None = None, title: str = "") -> None:
    """The summary a command prints on stderr when it is done (nothing with ``--quiet``): an
    optional one-row table, then ``WHAT -> OUT`` (``stdout`` for ``-``)."""
    from covtool.core import console

    if console.state.quiet:
        return
    if table:
        from rich.table import Table

        t = Table(title=title or None, title_justify="left")
        for col in table:
            t.add_column(str(col), justify="right")
        t.add_row(*(str(v) for v in table.values()))
        console.stderr.print(t)
    console.info(f"{what} -> {'stdout' if str(output) == '-' else output}")
