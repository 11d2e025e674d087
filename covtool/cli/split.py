"""Split a manifest into train/val/test (or k folds) at the level of the group, and check splits.

    covtool split MANIFEST -o OUT.csv --strategy representative|bad|random|kfold
    covtool split PATCHES.csv -o OUT.csv --from IMAGES.csv     (inherit an existing split)
    covtool split check MANIFEST                                (exit 1 on leakage)
"""

from __future__ import annotations

from typing import Annotated

import pandas as pd
import typer
from typer.core import TyperCommand, TyperGroup

from covtool.cli.common import Force, OutManifest
from covtool.core import console
from covtool.core.errors import CovtoolError, ManifestError, UsageError
from covtool.core.manifest import (
    STDIO,
    check_output,
    order_columns,
    read_manifest,
    row_error,
    write_manifest,
)
from covtool.splits import (
    SPLITS,
    STRATEGIES,
    bad_split,
    fold_to_split,
    group_ids,
    group_table,
    kfold_split,
    leakage_problems,
    random_split,
    representative_split,
    split_table,
)


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
    src_groups = group_ids(source)
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


def _naming(df: pd.DataFrame, strategy, *args):
    """Run a split strategy; its errors (a class with too few groups) name the manifest."""
    try:
        return strategy(*args)
    except CovtoolError as exc:
        if exc.path is None:
            exc.path = df.attrs.get("manifest")
        raise


def summary(out: pd.DataFrame, source: pd.DataFrame | None, class_column: str,
            count_column: str) -> tuple[pd.DataFrame | None, str]:
    """The per-class table: TEM Table 1 for a split, groups per fold for k folds.

    A derived manifest without the class column (patches split ``--from`` their images) takes each
    group's class from the source manifest. ``None`` when no class is known.
    """
    frame = out
    if class_column not in frame.columns:
        if source is None or class_column not in source.columns:
            return None, ""
        class_of = dict(zip(group_ids(source), source[class_column]))
        frame = out.assign(**{class_column: group_ids(out).map(class_of)})
    if "split" in frame.columns:
        counted = count_column if count_column in frame.columns else None
        return (split_table(frame, counted, class_column),
                f"split per class (groups = images/patients; {counted or 'rows per group'})")
    gid = group_ids(frame)
    fold = frame["fold"].astype(str)
    if fold.str.isdigit().all():
        fold = fold.astype(int)  # fold 10 after fold 9
    per = gid.groupby([frame[class_column], fold]).nunique().unstack(fill_value=0)
    per.columns = [f"groups_fold_{c}" for c in per.columns]
    per = per.reset_index().rename(columns={class_column: "class"})
    return per, "groups per class and fold"


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
    check_output(output, force)
    if table_file is not None:
        check_output(table_file, force)
    df = read_manifest(manifest, required=[class_column] if source is None else [])
    source_df = None
    if source is not None:
        if strategy is not None:
            raise UsageError("--from inherits a split; do not give --strategy too")
        source_df = read_manifest(source, unique_ids=False)
        out = inherit(df, source_df)
    else:
        if strategy is None:
            raise UsageError(f"--strategy is required (one of {', '.join(STRATEGIES)}), or --from IMAGES.csv")
        if strategy not in STRATEGIES:
            raise UsageError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        groups = group_table(df, count_column, class_column)
        gcol = group_ids(df)
        out = df.copy()
        if strategy == "kfold":
            if fold is not None and fold >= folds:
                raise UsageError(f"--fold {fold} is outside 0..{folds - 1}")
            if val_fold is not None and (fold is None or val_fold >= folds or val_fold == fold):
                raise UsageError("--val-fold needs --fold and must be another fold in 0.." + str(folds - 1))
            assign = _naming(df, kfold_split, groups, folds, seed)
            out["fold"] = [assign[g] for g in gcol]
            if fold is not None:
                out["split"] = [fold_to_split(assign[g], folds, fold, val_fold) for g in gcol]
        else:
            if strategy == "representative":
                assign = _naming(df, representative_split, groups)
            elif strategy == "bad":
                assign = _naming(df, bad_split, groups, parse_fractions(fractions))
            else:
                assign = _naming(df, random_split, groups, parse_fractions(fractions), seed)
            out["split"] = [assign[g] for g in gcol]
    # the summary is made before anything is written: a failure leaves no output behind
    table, title = summary(out, source_df, class_column, count_column)
    if table is None and table_file is not None:
        raise ManifestError(f"no '{class_column}' column here or in --from, so no per-class --table",
                            df.attrs.get("manifest"), 1)
    write_manifest(order_columns(out), output, force)
    if table is not None:
        if table_file is not None:
            write_manifest(table, table_file, force)
        if not console.state.quiet:
            print_table(table, title)
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
    n_groups = group_ids(df).nunique()
    console.info(f"ok: {len(df)} rows, {n_groups} groups, no group in two splits or folds")
