"""Diagnose whole patients: select lung slices, classify them, and apply COVID-CTset's patient rule.

INPUT is a folder of patients (TIFF/PNG slices or DICOM series), a NIfTI volume, or a slice
manifest ('group', 'series', 'path'), as for covtool select. A patient is
positive when more than THRESHOLD of its selected slices are classified positive (0: one slice
suffices), or, for a fraction such as 0.1, when at least that share is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from covtool.cli.common import Force, OutManifest, ShardOpt, SkipBad, done_line, load_tensorflow
from covtool.cli.select import show_series
from covtool.core import console
from covtool.core.errors import CovtoolError, UsageError
from covtool.ct.diagnose import RULES
from covtool.ct.selection import DEFAULT_DARK_LEVEL, DEFAULT_DIVISOR, DEFAULT_REGION

CONVERT_HINT = (" (or pass --convert-scale to divide each slice by its maximum, as the release's "
                "training part was made)")


def evaluation_tables(counts: dict, sweep, pos: str, neg: str, threshold):
    """The paper's Tables 5/6 counts and the threshold sweep as rich tables (for stderr)."""
    from rich.table import Table

    from covtool.ct.diagnose import COUNT_KEYS

    heads = [f"{pos} correct", f"wrong as {neg}", f"{neg} correct", f"wrong as {pos}", "undetermined",
             "correct", "wrong"]
    t = Table(title=f"patients at threshold {threshold} (COVID-CTset Tables 5/6)", title_justify="left")
    for h in heads:
        t.add_column(h, justify="right")
    t.add_row(*(str(counts[k]) for k in COUNT_KEYS))
    s = Table(title="threshold sweep", title_justify="left")
    for h in ["rule", "threshold", *heads]:
        s.add_column(h, justify="right")
    for row in sweep.itertuples(index=False):
        s.add_row(row.rule, f"{row.threshold:g}", *(str(getattr(row, k)) for k in COUNT_KEYS))
    return t, s


def classifier(run: Path, batch_size, series, source, convert_scale: bool, where):
    """:func:`covtool.ct.system.make_classifier`, its scale mismatch saying how to convert."""
    from covtool.core.scale import ScaleMismatchError
    from covtool.ct.system import input_scale, make_classifier

    try:
        return make_classifier(run, batch_size, lambda: input_scale(series, source), convert_scale,
                               where=where)
    except ScaleMismatchError as exc:
        if not exc.convertible:
            raise
        raise CovtoolError(exc.message + CONVERT_HINT, exc.path) from None


def diagnose_command(
    inputs: Annotated[list[str], typer.Argument(metavar="INPUT", help="Patients folder (TIFF/PNG slices or DICOM series), NIfTI volume (.nii, .nii.gz), or slice manifest ('-' for stdin).")],
    run: Annotated[Path, typer.Option("--run", metavar="RUNDIR", help="A trained run folder (covtool train).")] = ...,
    output: OutManifest = ...,
    threshold: Annotated[str, typer.Option("--threshold", help="A count (0: one positive slice suffices) or a fraction of the selected slices (0.1).")] = "0",
    rule: Annotated[str | None, typer.Option("--rule", help=f"One of {', '.join(RULES)}; by default read from the threshold (whole number: count, else fraction).")] = None,
    positive: Annotated[str | None, typer.Option("--positive-class", help="The positive class (default: the model's class whose name contains 'covid').")] = None,
    slices: Annotated[str | None, typer.Option("--slices", metavar="FILE", help="Also write the per-slice manifest with probabilities.")] = None,
    labels_file: Annotated[str | None, typer.Option("--labels", metavar="FILE", help="Patient labels (group,label) for the patient-level evaluation; default: the input manifest's 'label' column.")] = None,
    sweep_file: Annotated[str | None, typer.Option("--sweep", metavar="FILE", help="Write the threshold sweep (patients right/wrong per threshold) as CSV.")] = None,
    metrics_file: Annotated[str | None, typer.Option("--metrics", metavar="FILE", help="Write the patient-level counts as JSON.")] = None,
    prefetch: Annotated[bool, typer.Option("--prefetch/--no-prefetch", help="Read and select the next patient while the current one is classified.")] = True,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, help="Inference batch size (default: the run's).")] = None,
    region: Annotated[str, typer.Option("--region", metavar="X0,Y0,X1,Y1", help="Selection region (see covtool select).")] = ",".join(map(str, DEFAULT_REGION)),
    dark_level: Annotated[float, typer.Option("--dark-level", help="Selection dark level on COVID-CTset's stored scale (HU + 1024; DICOM and NIfTI slices are converted to it): 300 is -724 HU.")] = DEFAULT_DARK_LEVEL,
    divisor: Annotated[float, typer.Option("--divisor", min=1e-9, help="Selection divisor.")] = DEFAULT_DIVISOR,
    group: Annotated[str | None, typer.Option("--group", help="Patient id for every series found (INPUT is one patient's folder).")] = None,
    convert_scale: Annotated[bool, typer.Option(
        "--convert-scale", help="Divide each slice by its maximum before classifying: for a run trained "
                                "on COVID-CTset's training part (per-image-max) given stored slices "
                                "(HU + 1024). Without it such a mismatch is an error.")] = False,
    skip_bad: SkipBad = False,
    shard: ShardOpt = None,
    force: Force = False,
) -> None:
    from covtool.core.atomic import atomic_open
    from covtool.core.manifest import check_output, write_manifest, write_records
    from covtool.core.scale import check_selectable
    from covtool.core.shard import parse_shard
    from covtool.core.stage import check_done, run_stage, write_result
    from covtool.ct.diagnose import evaluate, parse_threshold, positive_class, summary
    from covtool.ct.pipeline import SelectOptions
    from covtool.ct.selection import parse_region
    from covtool.ct.series import collect_series
    from covtool.ct.system import DiagnoseStage, group_by_patient, patient_labels, slice_table
    from covtool.training import rundir

    for out in (output, slices, sweep_file, metrics_file):
        if out is not None:
            check_output(out, force)
    th = parse_threshold(threshold, rule)
    shard_ = parse_shard(shard)
    options = SelectOptions(parse_region(region), dark_level, divisor, skip_bad)
    known = rundir.read_config(run).get("classes")  # a missing run is named before TensorFlow's start-up
    if known:
        positive_class(list(known), positive)
    series, source = collect_series(inputs, group)
    check_selectable(source)
    labels = patient_labels(source, labels_file)
    if sweep_file is not None and not labels:  # before the model runs or anything is written
        raise UsageError("--sweep: needs patient labels (a 'label' column or --labels)")
    load_tensorflow()
    classify, classes = classifier(run, batch_size, series, source, convert_scale, inputs[0])
    with DiagnoseStage(classify, classes, th, positive, options, labels, on_series=show_series) as stage:
        result = run_stage(stage, group_by_patient(series), skip_bad=skip_bad, force=force,
                           shard=shard_, prefetch=prefetch, output=output)
    pos, neg = stage.positive, stage.negative
    write_result(result, output, force)
    if slices is not None:
        columns, rows = slice_table([n for n in result.notes if n is not None], classes, skip_bad)
        write_records(rows, columns, slices, force)
    facts = summary(result.rows, pos, neg, th)
    if labels:
        facts["evaluation"], sweep = evaluate(result.rows, labels, pos, neg, th)
        if sweep_file is not None:
            write_manifest(sweep, sweep_file, force)
        if not console.state.quiet:
            for table in evaluation_tables(facts["evaluation"], sweep, pos, neg, th):
                console.stderr.print(table)
    if metrics_file is not None:
        with atomic_open(metrics_file, "w", force=force) as fh:
            json.dump(facts, fh, indent=2)
            fh.write("\n")
    done_line(f"{facts['positive']} {pos}, {facts['negative']} {neg}, {facts['undetermined']} "
              f"undetermined of {facts['patients']} patients ({facts['seconds_per_patient']:.2f} s "
              "per patient)", output)
    check_done(result, output)
