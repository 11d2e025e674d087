"""Run the whole pipeline on data covtool generates itself, and say where the outputs are.

Every step runs covtool's own command line, in this process, as a shell would, so the demo also
shows that the stages chain; the outputs and a report (report.md) go to WORKDIR.
"""

# A script over the CLI: this module sits above covtool.cli (it imports covtool.cli.app to run
# the commands, and the registry names it by module only), so nothing under covtool.cli imports
# it and there is no import circle. Later stages append their steps to STEPS.

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from covtool.cli.app import app
from covtool.cli.common import Force
from covtool.core import console
from covtool.core.errors import CovtoolError


@dataclass
class Step:
    name: str
    run: Callable[[Path, int, bool], list[str]]   # (workdir, seed, force) -> outputs to show


def covtool(*args: str) -> None:
    """Run one covtool command in-process; raise on a non-zero exit."""
    argv = [str(a) for a in args]
    if console.state.quiet:
        argv = ["--quiet", *argv]
    if console.state.debug:   # each step's root options are parsed anew: keep the demo's own
        argv = ["--debug", *argv]
    try:
        # without standalone mode a failing command returns its exit status instead of exiting
        rc = app(args=argv, prog_name="covtool", standalone_mode=False)
        if isinstance(rc, int) and rc != 0:
            raise CovtoolError(f"demo step failed: covtool {' '.join(argv)}")
    except SystemExit as exc:  # pragma: no cover - standalone_mode=False returns codes instead
        if exc.code:
            raise CovtoolError(f"demo step failed: covtool {' '.join(argv)}") from None


#: a tiny slice classifier that trains in about half a minute on two cores (the papers' own
#: settings are the commands' defaults; see docs/train.md)
TINY_CUSTOM = ["--model", "custom", "--filters", "8,8,16,16", "--final-filters", "8",
               "--head-units", "32,32", "--dropout", "0.1", "--block-dropout", "0",
               "--bn-momentum", "0.8", "--optimizer", "adam", "--lr", "3e-3", "--batch-size", "16",
               "--monitor", "val_loss"]


def _f(force: bool) -> list[str]:
    return ["--force"] if force else []


def step_ct(work: Path, seed: int, force: bool) -> list[str]:
    from covtool.synth.ct import write_ct_dataset

    ct = work / "ct"
    console.info("generating 10 synthetic CT patients for training and 6 new ones to diagnose (16-bit TIFF) ...")
    write_ct_dataset(ct / "patients", n_patients=10, slices=(24, 30), seed=seed + 1, force=force)
    write_ct_dataset(ct / "new-patients", n_patients=6, slices=(24, 30), seed=seed + 2, force=force)
    sel = ct / "selected.csv"
    covtool("select", ct / "patients", "-o", sel, "--plot", ct / "plots", *_f(force))
    return [str(sel), str(ct / "plots")]


def step_ct_system(work: Path, seed: int, force: bool) -> list[str]:
    import pandas as pd

    from covtool.core.manifest import read_manifest, write_manifest

    ct = work / "ct"
    f = _f(force)
    # slice labels travel with the ground-truth manifest through select and split
    covtool("select", ct / "patients" / "truth.csv", "-o", ct / "train-slices.csv", "--only-selected", *f)
    covtool("split", ct / "train-slices.csv", "-o", ct / "split.csv", "--strategy", "random",
            "--stratify", "patient_label", "--seed", str(seed), *f)
    console.info("training a tiny slice classifier (96x96, 10 epochs) ...")
    covtool("train", ct / "split.csv", "-r", ct / "run", *TINY_CUSTOM, "--input-size", "96",
            "--epochs", "10", "--normalize", "range", "--hflip", "--seed", str(seed), *f)
    covtool("eval", ct / "run", ct / "split.csv", "-d", ct / "eval", *f)
    new = ct / "new-patients"
    covtool("patient-diagnose", new, "--run", ct / "run", "-o", ct / "patients-diagnosed.csv",
            "--labels", new / "patients.csv", "--slices", ct / "patient-slices.csv",
            "--sweep", ct / "threshold-sweep.csv", "--metrics", ct / "patient-metrics.json",
            "--threshold", "0", *f)
    # Grad-CAM on a few selected slices the model calls covid, and a few it calls normal
    slices = read_manifest(ct / "patient-slices.csv")
    sel = slices[slices["selected"] == "true"]
    pick = pd.concat([sel[sel["pred"] == "covid"].head(3), sel[sel["pred"] == "normal"].head(2)])
    write_manifest(pick, ct / "explain-slices.csv", force=True)
    covtool("explain", ct / "run", ct / "explain-slices.csv", "-d", ct / "gradcam", *f)
    return [str(ct / "eval"), str(ct / "patients-diagnosed.csv"), str(ct / "threshold-sweep.csv"),
            str(ct / "gradcam")]


def step_extract(work: Path, seed: int, force: bool) -> list[str]:
    from covtool.synth.pdf import make_paper

    pdfs = work / "pdf" / "papers"
    console.info("generating a synthetic 3-page paper (CT panels, a vector chart, a table, a logo) ...")
    make_paper(pdfs / "paper.pdf", seed=seed, force=force)
    out = work / "pdf" / "figures.csv"
    covtool("extract", str(pdfs), "-d", str(work / "pdf" / "figures"), "-o", str(out), "--split-panels",
            *(["--force"] if force else []))
    return [str(out), str(work / "pdf" / "figures")]


def step_em(work: Path, seed: int, force: bool) -> list[str]:
    from covtool.synth.em import write_em_dataset

    root = work / "em"
    f = _f(force)
    console.info("generating 16 synthetic TEM images (4 classes, 0.6-1.8 nm/px, 16-bit TIFF) ...")
    write_em_dataset(root / "images", n_per_class=4, shape=(192, 192), pixel_sizes=(0.6, 1.8),
                     masks=True, seed=seed, force=force)
    covtool("split", root / "images" / "manifest.csv", "-o", root / "images-split.csv",
            "--strategy", "representative", "--table", root / "split-table.csv", *f)
    covtool("rescale", root / "images-split.csv", "-d", root / "rescaled", "-o", root / "rescaled.csv", *f)
    covtool("crop", root / "rescaled.csv", "-d", root / "patches", "-o", root / "patches.csv", *f)
    covtool("split", "check", root / "patches.csv")
    # 24 per class (3 x 8 symmetries) instead of the paper's 736 keeps the demo small
    covtool("balance", root / "patches.csv", "-o", root / "balanced.csv", "--per-class", "24",
            "--seed", str(seed), *f)
    console.info("training a tiny custom CNN on the patches (32x32, 5 epochs) ...")
    covtool("train", root / "balanced.csv", "-r", root / "run", *TINY_CUSTOM, "--input-size", "32",
            "--epochs", "5", "--seed", str(seed), *f)
    covtool("eval", root / "run", root / "balanced.csv", "-d", root / "eval", *f)
    return [str(root / "images-split.csv"), str(root / "patches.csv"), str(root / "balanced.csv"),
            str(root / "eval")]


def step_report(work: Path, seed: int, force: bool) -> list[str]:
    from covtool.demo_report import write_report

    out = work / "report.md"
    write_report(work, out, force=True)
    return [str(out)]


def step_features(work: Path, seed: int, force: bool) -> list[str]:
    from covtool.synth.em import DEFAULT_CLASSES, write_em_dataset

    root = work / "features"
    console.info("generating 4 synthetic TEM images with ground-truth masks ...")
    write_em_dataset(root / "images", n_per_class=2, shape=(128, 128), pixel_sizes=(0.45, 0.55),
                     particles=(1, 2), classes=DEFAULT_CLASSES[:2], masks=True, seed=seed, force=force)
    out = root / "features.csv"
    covtool("features", root / "images" / "manifest.csv", "-o", out, "--per-object",
            *(["--force"] if force else []))
    return [str(out)]


STEPS: list[Step] = [Step("CT slice selection (COVID-CTset)", step_ct),
                     Step("TEM virus patches: split -> rescale -> crop -> balance -> train -> eval", step_em),
                     Step("figures and captions from PDFs (COVID-CT)", step_extract),
                     Step("SC2-MID features", step_features),
                     Step("CT system: split -> train -> eval -> patient-diagnose -> explain", step_ct_system)]


def run_demo(workdir: Path, seed: int = 0, force: bool = False) -> None:
    workdir = Path(workdir)
    if workdir.exists() and any(workdir.iterdir()) and not force:
        raise CovtoolError("demo folder is not empty (use --force to regenerate it)", workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    shown: list[tuple[str, list[str]]] = []
    for step in STEPS:
        console.info(f"[bold]== {step.name}[/bold]")
        shown.append((step.name, step.run(workdir, seed, force)))
    report = step_report(workdir, seed, force)
    console.info(f"\ndemo finished in {time.perf_counter() - t0:.1f} s; outputs:")
    for name, outs in shown:
        console.info(f"  {name}:")
        for o in outs:
            console.info(f"    {o}")
    console.info(f"  report: {report[0]}")


def demo_command(
    workdir: Annotated[Path, typer.Option("-d", "--workdir", help="Folder for the generated data and every output.")] = Path("demo-out"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated data.")] = 0,
    force: Force = False,
) -> None:
    run_demo(workdir, seed=seed, force=force)
