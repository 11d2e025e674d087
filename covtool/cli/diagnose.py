"""Diagnose whole patients: select lung slices, classify them, and apply COVID-CTset's patient rule.

INPUT is a folder of patients (TIFF/PNG slices or DICOM series), a NIfTI volume, or a slice
manifest ('group', 'series', 'path'), as for covtool select. A patient is
positive when more than THRESHOLD of its selected slices are classified positive (0: one slice
suffices), or, for a fraction such as 0.1, when at least that share is.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from covtool.cli.common import Force, OutManifest, ShardOpt, SkipBad, load_tensorflow
from covtool.cli.select import left_out_line, parse_region
from covtool.core import console
from covtool.core.atomic import atomic_open
from covtool.core.errors import CovtoolError, ManifestError, UsageError
from covtool.core.manifest import STDIO, check_output, read_manifest, write_manifest
from covtool.core.progress import make_progress
from covtool.core.scale import PER_IMAGE_MAX, check_scale, check_selectable, per_image_max
from covtool.core.shard import parse_shard
from covtool.ct.diagnose import (
    RULES,
    UNDETERMINED,
    default_sweep,
    parse_threshold,
    patient_counts,
    patient_decision,
    threshold_sweep,
)
from covtool.ct.pipeline import SelectOptions, load_slice, slice_ids
from covtool.ct.selection import DEFAULT_DARK_LEVEL, DEFAULT_DIVISOR, DEFAULT_REGION
from covtool.ct.series import collect_series
from covtool.ct.system import PatientResult, diagnose_patients, group_by_patient, input_scale
from covtool.training import rundir

PATIENT_COLUMNS = ["group", "slices", "selected", "positive", "fraction", "mean_prob", "score",
                   "decision", "seconds", "select_seconds", "infer_seconds"]


def positive_class(classes: list[str], given: str | None) -> str:
    """The class whose slices count as positive: given, or the one whose name contains 'covid'."""
    if given is not None:
        if given not in classes:
            raise UsageError(f"--positive-class {given!r} is not one of the model's classes ({', '.join(classes)})")
        return given
    hits = [c for c in classes if "covid" in c.lower()]
    if len(hits) != 1:
        raise UsageError(f"cannot tell the positive class among {', '.join(classes)}: pass --positive-class")
    return hits[0]


def negative_name(classes: list[str], positive: str) -> str:
    """The decision for a patient who is not positive: the other class of a two-class model."""
    others = [c for c in classes if c != positive]
    return others[0] if len(others) == 1 else f"not-{positive}"


def patient_labels(source: pd.DataFrame | None, labels_file: str | None) -> dict[str, str]:
    """Known patient labels: from ``--labels FILE`` (group,label) or the manifest's ``label`` column."""
    table = None
    if labels_file is not None:
        table = read_manifest(labels_file, required=["group", "label"], unique_ids=False)
    elif source is not None and "label" in source.columns:
        table = source
    if table is None:
        return {}
    out: dict[str, str] = {}
    for idx, g, lab in zip(table.index, table["group"], table["label"]):
        if lab == "":
            continue
        if out.setdefault(g, lab) != lab:
            raise ManifestError(f"patient {g} has two labels ({out[g]}, {lab})",
                                table.attrs.get("manifest"), int(idx) if table.attrs.get("manifest") else None)
    return out


def make_classifier(run: Path, batch_size: int | None, given_scale=None,
                    convert_scale: bool = False, where=None):
    """``(classify, classes)`` for a trained run folder (TensorFlow is imported here, not before).

    The slices' value scale (``given_scale``: the scale, or a function giving it, called only
    where the run records a scale, since finding it may read a slice) is checked against the run's
    (:func:`covtool.core.scale.check_scale`); with ``convert_scale`` stored slices are divided by
    their maximum for a run trained on COVID-CTset's training part.
    """
    from covtool.evaluation.predict import load_run, make_array_predictor, make_predictor

    cfg, model = load_run(run)
    if len(model.outputs[0].shape) != 2:
        raise CovtoolError("the run's model is not an image classifier (output is not (N, classes))", run)
    if callable(given_scale):
        given_scale = given_scale() if cfg.data_scale else None
    conversion = check_scale(cfg.data_scale or None, given_scale, cfg.pipeline.normalize,
                             where if where is not None else run, convert=convert_scale)
    if conversion == PER_IMAGE_MAX:
        predict_arrays = make_array_predictor(model, cfg, batch_size)

        def classify(paths: list[Path]) -> np.ndarray:
            return predict_arrays([per_image_max(load_slice(p)) for p in paths])

        return classify, list(cfg.classes)
    predict = make_predictor(model, cfg, batch_size)

    def classify(paths: list[Path]) -> np.ndarray:
        return predict(pd.DataFrame({"path": [str(p) for p in paths]}))

    return classify, list(cfg.classes)


def patient_row(r: PatientResult, classes: list[str], pos: str, neg: str, threshold) -> dict:
    k = classes.index(pos)
    n_sel = r.n_selected
    pred = r.probs.argmax(axis=1) if n_sel else np.zeros(0, int)
    n_pos = int((pred == k).sum())
    mean_prob = float(r.probs[:, k].mean()) if n_sel else float("nan")
    frac = n_pos / n_sel if n_sel else float("nan")
    return {"group": r.group, "slices": r.n_slices, "selected": n_sel, "positive": n_pos,
            "fraction": frac, "mean_prob": mean_prob, "score": frac,
            "decision": patient_decision(n_sel, n_pos, threshold, pos, neg, None if not n_sel else mean_prob),
            "seconds": round(r.seconds, 4), "select_seconds": round(r.select_seconds, 4),
            "infer_seconds": round(r.infer_seconds, 4), "error": r.error}


def slice_rows(r: PatientResult, classes: list[str]) -> list[dict]:
    probs = {id(sl): row for sl, row in zip(r.selected_slices, r.probs)}
    rows = []
    for sr in r.series:
        for sl, id_ in zip(sr.slices, slice_ids(sr)):
            row = {"id": id_, "path": str(sl.path), "group": r.group,
                   "series": sr.series.series, "slice": sl.slice, "dark_pixels": sl.dark_pixels,
                   "threshold": sr.threshold, "selected": sl.selected, "pred": "", "error": sl.error}
            if sl.slice_index is not None:
                row["slice_index"] = sl.slice_index
            p = probs.get(id(sl))
            for c_i, c in enumerate(classes):
                row[f"prob_{c}"] = float(p[c_i]) if p is not None else float("nan")
            if p is not None:
                row["pred"] = classes[int(np.argmax(p))]
            rows.append(row)
    return rows


def evaluation_tables(patients: pd.DataFrame, labels: dict[str, str], pos: str, neg: str, threshold):
    from rich.table import Table

    known = patients[patients["group"].isin(labels)]
    truths = [labels[g] for g in known["group"]]
    counts = patient_counts(known["decision"].tolist(), truths, pos)
    t = Table(title=f"patients at threshold {threshold} (COVID-CTset Tables 5/6)", title_justify="left")
    heads = [f"{pos} correct", f"wrong as {neg}", f"{neg} correct", f"wrong as {pos}", "undetermined", "correct", "wrong"]
    keys = ["positive_correct", "positive_called_negative", "negative_correct", "negative_called_positive",
            "undetermined", "correct", "wrong"]
    for h in heads:
        t.add_column(h, justify="right")
    t.add_row(*(str(counts[k]) for k in keys))
    grid = default_sweep()
    if threshold not in grid:
        grid.append(threshold)
    sweep = threshold_sweep(known, truths, pos, neg, grid)
    s = Table(title="threshold sweep", title_justify="left")
    for h in ["rule", "threshold", *heads]:
        s.add_column(h, justify="right")
    for row in sweep.itertuples(index=False):
        s.add_row(row.rule, f"{row.threshold:g}", *(str(getattr(row, k)) for k in keys))
    return counts, sweep, t, s


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
    for out in (output, slices, sweep_file, metrics_file):
        if out is not None:
            check_output(out, force)
    try:
        th = parse_threshold(threshold, rule)
    except ValueError as exc:
        raise UsageError(f"--threshold: {exc}") from None
    rundir.read_config(run)  # a missing run is named before TensorFlow's seconds of start-up
    options = SelectOptions(parse_region(region), dark_level, divisor, skip_bad)
    series, source = collect_series(inputs, group)
    check_selectable(source)
    labels = patient_labels(source, labels_file)
    if sweep_file is not None and not labels:
        raise UsageError("--sweep needs patient labels (a 'label' column or --labels)")
    load_tensorflow()
    patients = group_by_patient(series)
    shard_ = parse_shard(shard)
    if shard_ is not None:
        patients = shard_.select(patients)
    classify, classes = make_classifier(run, batch_size, lambda: input_scale(series, source), convert_scale,
                                        where=inputs[0])
    pos = positive_class(classes, positive)
    neg = negative_name(classes, pos)
    total = sum(len(s.slices) for _, ss in patients for s in ss)
    prow, srows = [], []
    with make_progress() as prog, tempfile.TemporaryDirectory(prefix="covtool-slices-") as stage:
        task = prog.add_task("diagnose", total=total)
        for r in diagnose_patients(patients, classify, len(classes), options,
                                   on_slice=lambda: prog.advance(task), prefetch=prefetch,
                                   stage_dir=Path(stage)):
            for sr in r.series:
                for w in sr.warnings:
                    console.warn(w)
                if sr.series.left_out:
                    console.info(left_out_line(sr.series))
            row = patient_row(r, classes, pos, neg, th)
            if r.group in labels:
                row["label"] = labels[r.group]
                row["correct"] = row["decision"] == labels[r.group]
            prow.append(row)
            if slices is not None:
                srows.extend(slice_rows(r, classes))
    cols = PATIENT_COLUMNS + (["label", "correct"] if labels else []) + (["error"] if skip_bad else [])
    table = pd.DataFrame(prow, columns=cols)
    write_manifest(table, output, force)
    if slices is not None:
        sdf = pd.DataFrame(srows)
        if not skip_bad:
            sdf = sdf.drop(columns=["error"])
        write_manifest(sdf, slices, force)
    n_und = int((table["decision"] == UNDETERMINED).sum())
    summary = {"patients": len(table), "positive": int((table["decision"] == pos).sum()),
               "negative": int((table["decision"] == neg).sum()), "undetermined": n_und,
               "threshold": {"rule": th.rule, "value": th.value}, "positive_class": pos,
               "seconds_per_patient": float(table["seconds"].mean()) if len(table) else 0.0}
    if labels and len(table):
        counts, sweep, t_counts, t_sweep = evaluation_tables(table, labels, pos, neg, th)
        summary["evaluation"] = counts
        if sweep_file is not None:
            write_manifest(sweep, sweep_file, force)
        if not console.state.quiet:
            console.stderr.print(t_counts)
            console.stderr.print(t_sweep)
    elif sweep_file is not None:
        raise UsageError("--sweep needs patient labels (a 'label' column or --labels)")
    if metrics_file is not None:
        with atomic_open(metrics_file, "w", force=force) as fh:
            json.dump(summary, fh, indent=2)
            fh.write("\n")
    dest = "stdout" if output == STDIO else output
    console.info(f"{summary['positive']} {pos}, {summary['negative']} {neg}, {n_und} undetermined "
                 f"of {len(table)} patients ({summary['seconds_per_patient']:.2f} s per patient) -> {dest}")
