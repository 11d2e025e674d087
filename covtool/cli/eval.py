"""Evaluate a trained run on a manifest's test rows: predictions, the papers' metrics, confusion.

Writes predictions.csv (the rows with 'pred' and 'prob_<class>'), metrics.json (accuracy, macro
precision/recall/F1, the positive class's binary precision/recall/F1, per-class
TP/FP/FN/TN/accuracy/sensitivity/specificity/precision, ROC AUC),
confusion.csv and confusion.png into OUTDIR (default: the run folder).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from covtool.cli.common import Force, load_tensorflow
from covtool.core import console
from covtool.core.atomic import together
from covtool.core.errors import ManifestError, OutputExistsError
from covtool.core.manifest import read_manifest, write_manifest
from covtool.core.scale import check_scale, manifest_scale


def eval_command(
    run: Annotated[Path, typer.Argument(metavar="RUNDIR", help="A run folder written by 'covtool train'.")],
    manifest: Annotated[str, typer.Argument(help="Manifest with path and label ('-' for stdin).")],
    outdir: Annotated[Path | None, typer.Option(
        "-o", "-d", "--outdir", metavar="OUTDIR",
        help="Folder for the outputs (default: RUNDIR); -o is the fixed form (shared CLI.md), "
             "-d the same option.")] = None,
    split: Annotated[str, typer.Option(
        "--split", help="Evaluate the rows with this split value; 'all' for every row.")] = "test",
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Default: the run's.")] = None,
    positive_class: Annotated[str | None, typer.Option(
        "--positive-class", metavar="CLASS",
        help="The class of the binary precision, recall and F1 (COVID-CT's F1). Default, for two "
             "classes: the one label meaning COVID ('COVID', 'covid-19'; not 'NonCOVID').")] = None,
    force: Force = False,
) -> None:
    from covtool.evaluation import report
    from covtool.training import rundir

    outdir = outdir or run
    if not force:
        for name in report.OUTPUTS:
            if (outdir / name).exists():
                raise OutputExistsError(outdir / name)
    from covtool.evaluation.metrics import positive_class as find_positive

    # a missing run and a bad --positive-class are named before TensorFlow's seconds of start-up
    positive = find_positive(list(rundir.read_config(run).get("classes") or []), positive_class)
    df = read_manifest(manifest, required=["path", "label"])
    if split != "all":
        if "split" not in df.columns:
            raise ManifestError("missing column split (use --split all to evaluate every row)",
                                df.attrs.get("manifest"), 1)
        df = df[df["split"].astype(str).str.strip() == split]
        if df.empty:
            raise ManifestError(f"no rows with split '{split}'", df.attrs.get("manifest"))

    load_tensorflow()
    from covtool.evaluation.metrics import classification_metrics
    from covtool.evaluation.predict import load_run, predict_probs

    cfg, model = load_run(run)
    check_scale(cfg.data_scale or None, manifest_scale(df), cfg.pipeline.normalize,
                df.attrs.get("manifest") or manifest)
    probs, labels = predict_probs(model, cfg, df, batch_size)
    classes = list(cfg.classes)
    metrics = classification_metrics(labels, probs, classes, positive=positive)
    from covtool.evaluation.segmentation import segmentation_metrics  # jcs: Dice, IoU of masks

    metrics = {"run": str(run), "split": split, **metrics,
               **segmentation_metrics(model, cfg, df, batch_size)}
    made = not outdir.exists()
    try:
        with together():   # the four files appear together or not at all
            write_manifest(report.predictions_frame(df, probs, classes), outdir / report.PREDICTIONS,
                           force=force)
            report.write_metrics(outdir / report.METRICS, metrics, force=force)
            report.write_confusion_csv(outdir / report.CONFUSION_CSV, metrics["confusion"], classes,
                                       force=force)
            report.plot_confusion(outdir / report.CONFUSION_PNG, metrics["confusion"], classes,
                                  force=force, title=f"{cfg.model.name} - {split}")
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                outdir.rmdir()   # only if still empty: never anything else's
        raise
    if not console.state.quiet:
        console.stderr.print(metrics_table(metrics))
    console.info(f"{len(df)} images evaluated -> {outdir}")


def metrics_table(metrics: dict):
    """A rich table: one row per class (COVID-CTset Table 9's columns, with F1 and AUC); the title
    has the overall figures, the positive class's binary P/R/F1 (COVID-CT's) and the macro ones."""
    from rich.table import Table

    def f(v):
        return "—" if v is None else f"{v:.3f}"

    binary = ""
    if metrics.get("positive_class") is not None:
        binary = (f"\n{metrics['positive_class']} (positive): P {f(metrics['precision'])}"
                  f"   R {f(metrics['recall'])}   F1 {f(metrics['f1'])}")
    table = Table(title=f"accuracy {f(metrics['accuracy'])} ({metrics['correct']} correct, "
                        f"{metrics['wrong']} wrong)   AUC {f(metrics['auc'])}{binary}"
                        f"\nmacro P {f(metrics['macro_precision'])}"
                        f"   macro R {f(metrics['macro_recall'])}   macro F1 {f(metrics['macro_f1'])}")
    for col in ("class", "TP", "FP", "FN", "TN", "accuracy", "sensitivity", "specificity",
                "precision", "F1", "AUC"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name, m in metrics["per_class"].items():
        table.add_row(name, str(m["tp"]), str(m["fp"]), str(m["fn"]), str(m["tn"]),
                      f(m["accuracy"]), f(m["sensitivity"]), f(m["specificity"]),
                      f(m["precision"]), f(m["f1"]), f(m["auc"]))
    return table
