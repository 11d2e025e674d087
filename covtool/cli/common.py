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


#: the pixel size (nm) of rows or images that carry none: one name in every command
DefaultPixelSize = Annotated[float | None, typer.Option(
    "--default-pixel-size", metavar="NM",
    help="Pixel size in nm of rows without a 'pixel_size_nm' value (e.g. a whole folder from one "
         "microscope setting).")]


def old_option(flag: str, kind: type = float):
    """A renamed option's old spelling: hidden from ``--help``, accepted for one release
    (:func:`renamed` turns it into the new option's value)."""
    return Annotated[kind | None, typer.Option(flag, hidden=True, help=f"The old name of {flag}.")]


def renamed(new, old, new_flag: str, old_flag: str):
    """The option's value given under its new or (with a warning) its old name; both is bad usage."""
    if old is None:
        return new
    from covtool.core import console
    from covtool.core.errors import UsageError

    if new is not None:
        raise UsageError(f"{old_flag} is the old name of {new_flag}: give one")
    console.warn(f"{old_flag} is now {new_flag}; the old name goes in the next release")
    return old
