"""Split a manifest into train/val/test (or k folds) at the level of the group, and check splits.

    covtool split MANIFEST -o OUT.csv --strategy representative|bad|random|kfold
    covtool split PATCHES.csv -o OUT.csv --from IMAGES.csv     (inherit an existing split)
    covtool split check MANIFEST                                (exit 1 on leakage)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperCommand, TyperGroup

from covtool.cli.common import Force, OutManifest
from covtool.core import console
from covtool.core.errors import CovtoolError, ManifestError
from covtool.core.manifest import STDIO, check_output, order_columns, read_manifest, write_manifest
from covtool.splits import (
    STRATEGIES,
    SplitPlan,
    assign_split,
    group_ids,
    inherit,
    split_problems,
    split_summary,
)

if TYPE_CHECKING:
    import pandas as pd


class SplitGroup(TyperGroup):
    """``split MANIFEST ...`` runs the default subcommand; ``split check ...`` the check.

    ``split --help`` shows the default subcommand's options (they are the ones people look for),
    and its usage line and usage errors read ``covtool split``, not the hidden ``make``.
    """

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands:
            args = ["make", *args]
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx, args):
        name, cmd, rest = super().resolve_command(ctx, args)
        if name == "make":
            return None, cmd, rest  # no sub-command name in usage lines and errors
        return name, cmd, rest


class _DefaultContext(typer.Context):
    @property
    def command_path(self) -> str:
        return super().command_path.rstrip()  # "covtool split", not "covtool split "


class _DefaultCommand(TyperCommand):
    context_class = _DefaultContext


split_app = typer.Typer(cls=SplitGroup, help=__doc__, no_args_is_help=True)


def print_table(table: pd.DataFrame, title: str) -> None:
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for c in table.columns:
        t.add_column(str(c), justify="left" if c == "class" else "right")
    for row in table.itertuples(index=False):
        t.add_row(*(f"{v:g}" if isinstance(v, float) else str(v) for v in row))
    console.stderr.print(t)


@split_app.command("make", hidden=True, cls=_DefaultCommand)
def split_command(
    manifest: Annotated[str, typer.Argument(metavar="MANIFEST", help="Item manifest with 'label' and 'group' ('-' for stdin).")],
    output: OutManifest = ...,
    strategy: Annotated[str | None, typer.Option("--strategy", help=f"One of {', '.join(STRATEGIES)}.")] = None,
    class_column: Annotated[str, typer.Option("--stratify", metavar="COLUMN", help="The class of a group, for stratification and the table (CT slices: the patient's label).")] = "label",
    count_column: Annotated[str, typer.Option("--count-column", help="Column to order groups by (per group; rows of a group when absent).")] = "particles",
    fractions: Annotated[str, typer.Option("--fractions", metavar="TRAIN,VAL,TEST", help="Proportions for bad and random.")] = "0.6,0.2,0.2",
    folds: Annotated[int, typer.Option("--folds", min=2, help="Number of folds for kfold.")] = 5,
    fold: Annotated[int | None, typer.Option("--fold", min=0, help="With kfold: also write 'split' for this fold (its test part is test).")] = None,
    val_fold: Annotated[int | None, typer.Option("--val-fold", min=0, help="With --fold: this fold's groups become val.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for random and kfold.")] = 0,
    source: Annotated[str | None, typer.Option("--from", metavar="IMAGES.csv", help="Inherit the split of each row's group from this manifest instead of splitting.")] = None,
    table_file: Annotated[str | None, typer.Option("--table", metavar="FILE", help="Write the per-class summary (TEM Table 1) as CSV.")] = None,
    force: Force = False,
) -> None:
    """Assign train/val/test (or folds) per group; 'covtool split check MANIFEST' checks a split."""
    plan = SplitPlan(strategy, source is not None, fractions, folds, fold, val_fold, seed)
    check_output(output, force)
    if table_file is not None:
        check_output(table_file, force)
    df = read_manifest(manifest, required=[class_column] if source is None else [])
    source_df = read_manifest(source, unique_ids=False) if source is not None else None
    out = inherit(df, source_df) if source_df is not None else assign_split(df, plan, class_column, count_column)
    # the summary is made before anything is written: a failure leaves no output behind
    table, title = split_summary(out, source_df, class_column, count_column)
    if table is None and table_file is not None:
        raise ManifestError(f"no '{class_column}' column here or in --from, so no per-class --table",
                            df.attrs.get("manifest"), 1)
    write_manifest(order_columns(out), output, force)
    if table is not None:
        if table_file is not None:
            write_manifest(table, table_file, force)
        if not console.state.quiet:
            print_table(table, title)
    console.info(f"{len(out)} rows -> {'stdout' if output == STDIO else output}")


@split_app.command("check")
def check_command(
    manifest: Annotated[str, typer.Argument(metavar="MANIFEST", help="A split manifest ('-' for stdin).")],
) -> None:
    """Exit 1, naming the groups, when a group is in two splits or two folds, or a class misses a split."""
    df = read_manifest(manifest)
    problems = split_problems(df)
    if problems:
        raise CovtoolError("; ".join(problems), df.attrs.get("manifest"))
    n_groups = group_ids(df).nunique()
    console.info(f"ok: {len(df)} rows, {n_groups} groups, no group in two splits or folds")
