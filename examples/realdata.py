"""covtool on the real releases in ../shared/data: every reader and stage, and what each found.

    make realdata                                   # DATA=../shared/data OUT=realdata-out
    python examples/realdata.py --data DIR --out DIR [--covtool PATH]

Runs each command as a user would (a subprocess of the installed ``covtool``), stops at the first
that fails (its one-line error is the report), and prints per step the command and the figures
read back from its outputs: items, groups, splits, removals, selected slices, a short training
run's metrics. Nothing under DATA is written. A dataset missing from DATA is reported and skipped.
The training runs are tiny (a few epochs of a small CNN at 64x64 pixels): they show the data
flowing through train and eval, not the papers' figures (docs/reproducing.md).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

TINY = ["--model", "custom", "--filters", "8,8,16,16", "--final-filters", "8", "--head-units", "32,32",
        "--dropout", "0.1", "--block-dropout", "0", "--optimizer", "adam", "--lr", "3e-3",
        "--batch-size", "16", "--input-size", "64", "--weights", "none", "--seed", "0"]


class Runner:
    def __init__(self, covtool: str, out: Path):
        self.covtool = covtool
        self.out = out

    def __call__(self, *args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess:
        cmd = [self.covtool, "--quiet", *map(str, args)]
        shown = " ".join(shlex.quote(c) for c in cmd)
        print(f"  $ {shown}", flush=True)
        t0 = time.perf_counter()
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stderr.strip() or f"exit {r.returncode}", file=sys.stderr)
            raise SystemExit(f"realdata: failed (exit {r.returncode}): {shown}")
        for line in r.stderr.strip().splitlines()[:8]:  # warnings survive --quiet
            print(f"    {line}")
        print(f"    ({time.perf_counter() - t0:.1f} s)")
        return r


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def counts(df: pd.DataFrame, col: str) -> str:
    if col not in df.columns:
        return "-"
    vc = df[col].replace("", "(none)").value_counts()
    return ", ".join(f"{k} {v}" for k, v in sorted(vc.items()))


def header(title: str) -> None:
    print(f"\n== {title}", flush=True)


def covid_ct(run: Runner, data: Path, out: Path) -> None:
    header("COVID-CT (UCSD-AI4H): ingest, a short training run, eval")
    m = out / "covid-ct.csv"
    run("ingest", "covid-ct", data / "covid-ct", "-o", m, "--force")
    df = read(m)
    print(f"  {len(df)} images; labels: {counts(df, 'label')}; splits: {counts(df, 'split')}")
    for label, sub in df.groupby("label"):
        print(f"  {label}: {sub['group'].nunique()} patient groups")
    run("split", "check", m)
    runs = out / "covid-ct-run"
    run("train", m, "-r", runs, *TINY, "--epochs", "3", "--force")
    run("eval", runs, m, "-d", out / "covid-ct-eval", "--force")
    metrics = json.loads((out / "covid-ct-eval" / "metrics.json").read_text())
    print(f"  tiny CNN, 3 epochs, 64x64 (not the paper's DenseNet-169): test accuracy "
          f"{metrics['accuracy']:.3f}, F1 of {metrics['positive_class']} {metrics['f1']:.3f} "
          f"(macro F1 {metrics['macro_f1']:.3f}), AUC {metrics.get('auc', float('nan')):.3f}")


def covid_cxr(run: Runner, data: Path, out: Path) -> None:
    header("COVID-19 image data collection: metadata.csv (June 2020 schema) and 59 of its images")
    m = out / "covid-cxr.csv"
    r = run("ingest", "covid-cxr", data / "covid-cxr", "-o", m, "--skip-bad", "--force")
    df = read(m)
    print(f"  {len(df)} images on disk; {df['group'].nunique()} patient groups; "
          f"modality: {counts(df, 'modality')}")
    print(f"  findings: {counts(df, 'label')}")
    del r
    m2 = out / "covid-cxr-xray.csv"
    run("ingest", "covid-cxr", data / "covid-cxr", "-o", m2, "--skip-bad", "--force",
        "--modality", "X-ray", "--label-map", "COVID-19=covid", "--label-map", "No Finding=normal",
        "--label-map", ".=other")
    print(f"  X-ray, labels mapped: {counts(read(m2), 'label')}")


def tem(run: Runner, data: Path, out: Path) -> None:
    header("TEM virus dataset: 306 real 256x256 crops at 1 nm/px (14 classes, cut from the release's test images)")
    m = out / "tem-crops.csv"
    table = data / "tem-release" / "protocol_A_official.csv"
    extra = ["--split-table", table] if table.is_file() else []
    run("ingest", "tem", data / "tem-crops", "-o", m, "--force", *extra)
    df = read(m)
    print(f"  {len(df)} crops, {df['label'].nunique()} classes, {df['group'].nunique()} source images; "
          f"pixel sizes: {counts(df, 'pixel_size_nm')}; the release's split table: {counts(df, 'split')}")
    s = out / "tem-split.csv"
    # few source images per class (3 for some): patient-level style k folds, one per role
    run("split", m, "-o", s, "--strategy", "kfold", "--folds", "3", "--fold", "0", "--val-fold", "1",
        "--seed", "0", "--force")
    run("split", "check", s)
    print(f"  splits: {counts(read(s), 'split')}")
    runs = out / "tem-run"
    run("train", s, "-r", runs, *TINY, "--epochs", "3", "--force")
    run("eval", runs, s, "-d", out / "tem-eval", "--force")
    metrics = json.loads((out / "tem-eval" / "metrics.json").read_text())
    print(f"  tiny CNN, 3 epochs, 64x64: test accuracy {metrics['accuracy']:.3f}, "
          f"macro F1 {metrics['macro_f1']:.3f} (chance: {1 / df['label'].nunique():.3f})")


def ct_dicom(run: Runner, data: Path, out: Path, ct_run: Path | None) -> None:
    header("COVID-CT-MD patient P001: a whole DICOM series (JPEG-Lossless), slice selection")
    series = next((data / "ct-dicom" / "covid-ct-md").rglob("P001"), None)
    if series is None:
        print("  P001 not found: skipped")
        return
    series = series.parent  # the patients folder: each patient's folder is its group
    m = out / "p001-select.csv"
    run("select", series, "-o", m, "--plot", out / "p001-plots", "--force")
    df = read(m)
    sel = df[df["selected"].str.lower() == "true"]
    print(f"  {len(df)} slices in {df['series'].nunique()} series of {df['group'].nunique()} patient(s) "
          f"({', '.join(sorted(df['group'].unique()))}); {len(sel)} selected "
          f"(slice positions {sel['slice'].iloc[0] if len(sel) else '-'} .. "
          f"{sel['slice'].iloc[-1] if len(sel) else '-'})")
    labels_npy = data / "ct-dicom" / "covid-ct-md" / "Slice-level-labels-updated-1.npy"
    if labels_npy.is_file() and len(df) == 148:
        import numpy as np

        infected = np.load(labels_npy, allow_pickle=True)[0][: len(df)].astype(bool)
        # the labels are in SliceLocation order; the manifest is in anatomical order along the
        # slice normal: the same order, perhaps reversed, as the positions tell
        pos = df["slice"].astype(float).to_numpy()
        order = np.argsort(pos)
        selected = (df["selected"].str.lower() == "true").to_numpy()[order]
        print(f"  doctors' slice labels: {int(infected.sum())} slices with infection, "
              f"{int((infected & selected).sum())} of them selected")
    if ct_run is not None:
        d = out / "p001-diagnose.csv"
        run("patient-diagnose", series, "--run", ct_run, "-o", d, "--force", "--positive-class", "covid")
        row = read(d).iloc[0]
        print(f"  patient-diagnose with the COVID-CT tiny run (plumbing, not a diagnosis): "
              f"{row['selected']} selected, {row['positive']} positive -> {row['decision']}")


def covid_ctset(run: Runner, data: Path, out: Path) -> None:
    header("COVID-CTset: the release's tables (no slice images could be had)")
    src = data / "covid-ctset"
    details = read(src / "Patient_details.csv")
    listed = read(src / "all.csv")
    print(f"  Patient_details.csv: {len(details)} patients ({counts(details, 'COVID-19 Infection')}); "
          f"all.csv: {len(listed)} listed slices ({counts(listed, 'class')})")


def pdfs(run: Runner, data: Path, out: Path) -> None:
    header("COVID-CT's mining: figures and captions from 13 real papers")
    for name in ("pdfs", "pdfs-dev"):
        folder = data / name
        if not folder.is_dir():
            continue
        m = out / f"extract-{name}.csv"
        run("extract", folder, "-d", out / f"extract-{name}", "-o", m, "--force")
        df = read(m)
        expected = json.loads((folder / "expected.json").read_text())
        n_expected = sum(len(paper.get("figures", [])) for paper in expected.values())
        print(f"  {name}: {df['source'].nunique()} PDFs, {len(df)} rows "
              f"({(df.get('caption', pd.Series(dtype=str)) != '').sum()} with a caption); "
              f"a person counted {n_expected} figures")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("realdata-out"))
    ap.add_argument("--covtool", default=str(Path(sys.executable).with_name("covtool")))
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"realdata: no data folder {args.data} (the real releases live in ../shared/data)",
              file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    run = Runner(args.covtool, args.out)
    t0 = time.perf_counter()
    steps = [("covid-ct", covid_ct), ("covid-cxr", covid_cxr), ("tem-crops", tem),
             ("covid-ctset", covid_ctset), ("pdfs", pdfs)]
    for folder, step in steps:
        if (args.data / folder).is_dir():
            step(run, args.data, args.out)
        else:
            header(f"{folder}: not in {args.data}, skipped")
    ct_run = args.out / "covid-ct-run"
    if (args.data / "ct-dicom").is_dir():
        ct_dicom(run, args.data, args.out, ct_run if (ct_run / "model.keras").is_file() else None)
    print(f"\nrealdata: every step passed in {time.perf_counter() - t0:.0f} s; outputs in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
