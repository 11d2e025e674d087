"""Balance the training patches: each class to --per-class samples by flips and 90° rotations.

Only rows of the training split change: a class with fewer patches gets augmented copies (the 8
symmetries of the square), a class with more is randomly reduced. Copies point at the original
patch file and name their transform in 'transform' (applied at load time); 'augmented_from'
names the original. Other splits pass unchanged. Deterministic for --seed.
"""

from __future__ import annotations

from typing import Annotated

import typer

from covtool.cli.common import Force, OutManifest
from covtool.core import console
from covtool.core.manifest import STDIO, check_output, order_columns, read_manifest, write_manifest
from covtool.em.balance import DEFAULT_PER_CLASS, BalanceResult


def balance_command(
    manifest: Annotated[str, typer.Argument(metavar="MANIFEST", help="Patch manifest ('-' for stdin).")],
    output: OutManifest = ...,
    per_class: Annotated[int, typer.Option("--per-class", min=1, help="Samples per class in the training split (the paper: 736).")] = DEFAULT_PER_CLASS,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random reduction and of the choice of transforms.")] = 0,
    split: Annotated[str, typer.Option("--split", help="The split to balance (the paper: the training set).")] = "train",
    force: Force = False,
) -> None:
    from covtool.em.stages import balance_table

    check_output(output, force)
    df = read_manifest(manifest, required=["id", "path", "label", "split"])
    result, warnings = balance_table(df, per_class, seed, split)
    for line in warnings:
        console.warn(line)
    write_manifest(order_columns(result.manifest), output, force)
    if not console.state.quiet:
        console.stderr.print(_summary(result, split))
        dest = "stdout" if output == STDIO else output
        console.info(f"{split}: {len(result.counts)} classes balanced to {per_class} -> {dest}")


def _summary(result: BalanceResult, split: str):
    from rich.table import Table

    table = Table(title=f"balance ({split} split)", title_justify="left")
    for col in ("label", "patches", "after", "augmented", "dropped"):
        table.add_column(col, justify="left" if col == "label" else "right")
    for label, (before, after) in result.counts.items():
        table.add_row(label, str(before), str(after), str(max(after - before, 0)), str(max(before - after, 0)))
    return table
