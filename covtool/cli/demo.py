"""Run the whole pipeline on data covtool generates itself, and say where the outputs are."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from covtool.cli.common import Force


def demo_command(
    workdir: Annotated[Path, typer.Option("-d", "--workdir", help="Folder for the generated data and every output.")] = Path("demo-out"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated data.")] = 0,
    force: Force = False,
) -> None:
    from covtool.demo import run_demo

    run_demo(workdir, seed=seed, force=force)
