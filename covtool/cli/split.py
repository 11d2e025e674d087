"""Split a manifest into train/val/test (or k folds) at the level of the group, and check splits.

    covtool split MANIFEST -o OUT.csv --strategy representative|bad|random|kfold
    covtool split PATCHES.csv -o OUT.csv --from IMAGES.csv     (inherit an existing split)
    covtool split check MANIFEST                                (exit 1 on leakage)
"""

from __future__ import annotations

from typing import Annotated

import pandas as pd
import typer
from typer.core import TyperGroup

from covtool.cli.common import Force, OutManifest
from covtool.core import console
from covtool.core.errors import CovtoolError, ManifestError, UsageError
from covtool.core.manifest import STDIO, check_output, read_manifest, row_error, write_manifest
from covtool.splits import (
    SPLITS,
    STRATEGIES,
    bad_split,
    fold_to_split,
    group_table,
    kfold_split,
    leakage_problems,
    random_split,
    representative_split,
    split_table,
)


class SplitGroup(TyperGroup):
    """``split MANIFEST ...`` runs the default subcommand; ``split check ...`` the check."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["make", *args]
        return super().parse_args(ctx, args)


split_app = typer.Typer(cls=SplitGroup, help=__doc__, no_args_is_help=True)


def parse_fractions(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise UsageError(f"--fractions expects three numbers TRAIN,VAL,TEST, got {text!r}") from None
    if len(parts) != 3:
        raise UsageError(f"--fractions expects three numbers TRAIN,VAL,TEST, got {text!r}")
    return parts  # type: ignore[return-value]


def inherit(df: pd.DataFrame, source: pd.DataFrame) -> pd.DataFrame:
    """Give every row the split (and fold) of its group in ``source`` (an image-level manifest)."""
    src_groups = source["group"] if "group" in source.columns else source["id"]
    cols = [c for c in ("split", "fold") if c in source.columns]
    if not cols:
        raise ManifestError("has neither a 'split' nor a 'fold' column to inherit", source.attrs.get("manifest"), 1)
    per = {}
    for idx, g in zip(source.index, src_groups):
        vals = tuple(source.at[idx, c] for c in cols)
        if per.setdefault(g, vals) != vals:
            raise row_error(source, idx, f"group '{g}' has two different splits")
    if "group" not in df.columns:
        raise ManifestError("missing column group (needed to inherit a split)", df.attrs.get("manifest"), 1)
    out = df.copy()
    for i, c in enumerate(cols):
        values = []
        for idx, g in zip(out.index, out["group"]):
            if g not in per:
                raise row_error(df, idx, f"group '{g}' is not in {source.attrs.get('manifest')}")
            values.append(per[g][i])
        out[c] = values
    return out


def print_table(table: pd.DataFrame, title: str) -> None:
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for c in table.columns:
        t.add_column(str(c), justify="left" if c == "class" else "right")
    for row in table.itertuples(index=False):
        t.add_row(*(f"{v:g}" if isinstance(v, float) else str(v) for v in row))
    console.stderr.print(t)


def _assign(out, gcol, groups, strategy, fractions, folds, fold, val_fold, seed):
    """Apply one strategy; ``split`` (and ``fold``) columns added to ``out``."""
    if strategy == "kfold":
        if fold is not None and fold >= folds:
            raise UsageError(f"--fold {fold} is outside 0..{folds - 1}")
        if val_fold is not None and (fold is None or val_fold >= folds or val_fold == fold):
            raise UsageError("--val-fold needs --fold and must be another fold in 0.." + str(folds - 1))
        assign = kfold_split(groups, folds, seed)
        out["fold"] = [assign[g] for g in gcol]
        if fold is not None:
            out["split"] = [fold_to_split(assign[g], folds, fold, val_fold) for g in gcol]
    else:
        if strategy == "representative":
            assign = representative_split(groups)
        elif strategy == "bad":
            assign = bad_split(groups, parse_fractions(fractions))
        else:
            assign = random_split(groups, parse_fractions(fractions), seed)
        out["split"] = [assign[g] for g in gcol]
    return out


@split_app.command("make", hidden=True)
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
    """Assign train/val/test (or folds) per group."""
    check_output(output, force)
    if table_file is not None:
        check_output(table_file, force)
    df = read_manifest(manifest, required=[class_column] if source is None else [])
    if source is not None:
        if strategy is not None:
            raise UsageError("--from inherits a split; do not give --strategy too")
        out = inherit(df, read_manifest(source, unique_ids=False))
    else:
        if strategy is None:
            raise UsageError(f"--strategy is required (one of {', '.join(STRATEGIES)}), or --from IMAGES.csv")
        if strategy not in STRATEGIES:
            raise UsageError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        groups = group_table(df, count_column, class_column)
        gcol = df["group"] if "group" in df.columns else df["id"]
        out = df.copy()
        try:
            out = _assign(out, gcol, groups, strategy, fractions, folds, fold, val_fold, seed)
        except CovtoolError as exc:
            if exc.path is None and not isinstance(exc, UsageError):  # about the data: name the file
                raise CovtoolError(exc.message, df.attrs.get("manifest")) from None
            raise
    write_manifest(out, output, force)
    if "split" in out.columns:
        counted = count_column if count_column in df.columns else None
        table = split_table(out, counted, class_column if class_column in out.columns else "label")
        if table_file is not None:
            write_manifest(table, table_file, force)
        if not console.state.quiet:
            print_table(table, "split per class (groups = images/patients; "
                               f"{counted or 'rows per group'})")
    elif not console.state.quiet and "fold" in out.columns:
        per = out.groupby([out[class_column], out["fold"]])["group" if "group" in out.columns else "id"].nunique().unstack(fill_value=0)
        per.columns = [f"fold {c}" for c in per.columns]
        print_table(per.reset_index().rename(columns={class_column: "class"}), "groups per class and fold")
    dest = "stdout" if output == STDIO else output
    console.info(f"{len(out)} rows -> {dest}")


@split_app.command("check")
def check_command(
    manifest: Annotated[str, typer.Argument(metavar="MANIFEST", help="A split manifest ('-' for stdin).")],
) -> None:
    """Exit 1, naming the groups, when a group is in two splits or two folds, or a class misses a split."""
    df = read_manifest(manifest)
    if "split" not in df.columns and "fold" not in df.columns:
        raise ManifestError("has neither a 'split' nor a 'fold' column", df.attrs.get("manifest"), 1)
    unknown = sorted(set(df.get("split", pd.Series(dtype=str))) - set(SPLITS) - {""})
    problems = leakage_problems(df)
    if unknown:
        problems.insert(0, f"unknown split value(s): {', '.join(unknown)}")
    if problems:
        raise CovtoolError("; ".join(problems), df.attrs.get("manifest"))
    n_groups = (df["group"] if "group" in df.columns else df["id"]).nunique()
    console.info(f"ok: {len(df)} rows, {n_groups} groups, no group in two splits or folds")
