"""``covtool demo``: the whole pipeline on generated data, stage by stage.

Each step runs the real command line (the same code path as a user's shell), in-process, so the
demo also checks that the stages chain. Later stages append their steps to :data:`STEPS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from covtool.core import console
from covtool.core.errors import CovtoolError


@dataclass
class Step:
    name: str
    run: Callable[[Path, int, bool], list[str]]   # (workdir, seed, force) -> outputs to show


def covtool(*args: str) -> None:
    """Run one covtool command in-process; raise on a non-zero exit."""
    from covtool.cli.app import app

    argv = [str(a) for a in args]
    if console.state.quiet:
        argv = ["--quiet", *argv]
    try:
        # without standalone mode a failing command returns its exit status instead of exiting
        rc = app(args=argv, prog_name="covtool", standalone_mode=False)
        if isinstance(rc, int) and rc != 0:
            raise CovtoolError(f"demo step failed: covtool {' '.join(argv)}")
    except SystemExit as exc:  # pragma: no cover - standalone_mode=False returns codes instead
        if exc.code:
            raise CovtoolError(f"demo step failed: covtool {' '.join(argv)}") from None
    finally:
        pass


def step_ct(work: Path, seed: int, force: bool) -> list[str]:
    from covtool.synth.ct import write_ct_dataset

    patients = work / "ct" / "patients"
    console.info("generating 6 synthetic CT patients (16-bit TIFF) ...")
    write_ct_dataset(patients, n_patients=6, slices=(30, 45), seed=seed, force=force)
    sel = work / "ct" / "selected.csv"
    args = ["select", str(patients), "-o", str(sel), "--plot", str(work / "ct" / "plots")]
    covtool(*args, *(["--force"] if force else []))
    return [str(sel), str(work / "ct" / "plots")]


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
    console.info("generating 8 synthetic TEM images (4 classes, 0.6-1.8 nm/px, 16-bit TIFF) ...")
    write_em_dataset(root / "images", n_per_class=2, shape=(192, 192), pixel_sizes=(0.6, 1.8),
                     masks=True, seed=seed, force=force)
    f = ["--force"] if force else []
    covtool("rescale", root / "images" / "manifest.csv", "-d", root / "rescaled",
            "-o", root / "rescaled.csv", *f)
    covtool("crop", root / "rescaled.csv", "-d", root / "patches", "-o", root / "patches.csv", *f)
    # a few patches per class here: 24 (3 x 8 symmetries) instead of the paper's 736 keeps it small
    covtool("balance", root / "patches.csv", "-o", root / "balanced.csv", "--per-class", "24",
            "--seed", str(seed), *f)
    return [str(root / "rescaled.csv"), str(root / "patches.csv"), str(root / "balanced.csv")]


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
                     Step("figures and captions from PDFs (COVID-CT)", step_extract),
                     Step("TEM virus patches: rescale -> crop -> balance", step_em),
                     Step("SC2-MID features", step_features)]


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
    console.info(f"\ndemo finished in {time.perf_counter() - t0:.1f} s; outputs:")
    for name, outs in shown:
        console.info(f"  {name}:")
        for o in outs:
            console.info(f"    {o}")
