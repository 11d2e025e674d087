"""Speed of ``ingest covid-ctset`` on a generated COVID-CTset tree, against a plain baseline.

The tree has the release's raw layout (``<part>/<patientN>/SR_k/IMnnnnn.tif``, 512x512 uint16
slices), a fold list naming a tenth of the slices, and Patient_details.csv. Measured in one run:

* baseline: ``os.walk`` + a regex on every name + reading every slice with tifffile — the least
  a reader that finds damaged files must do;
* covtool with ``--verify`` (decodes every slice) and with ``--no-verify`` (names only).

Goal: verify within 1.5x of the baseline (the bookkeeping is not the cost); no-verify >= 5,000
slices/s, so the 63,849-slice dataset is listed in seconds.

    python benchmarks/bench_ingest.py [--patients 10] [--slices 40]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from covtool.core.imageio import write_image
from covtool.datasets.covid_ctset import ingest_covid_ctset


def make_tree(root: Path, patients: int, slices: int) -> int:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 5000, (512, 512), dtype=np.uint16)
    lines, details, n = ["filename,class"], [], 0
    for p in range(1, patients + 1):
        part, cls = ("137covid", "covid") if p % 2 else ("normal1", "normal")
        details.append(f"patient{p},M,040Y,20200401,{'Positive' if cls == 'covid' else 'Negative'},6,5,5")
        for sr in ("SR_2", "SR_3", "SR_4"):
            for i in range(1, slices + 1):
                write_image(root / part / f"patient{p}" / sr / f"IM{i:05d}.tif", img)
                n += 1
                if i % 10 == 0:
                    lines.append(f"{part}_patient{p}_{sr}_IM{i:05d}.tif,{cls}")
    (root / "train1.csv").write_text("\n".join(lines) + "\n")
    (root / "Patient_details.csv").write_text(
        "Patient ID,SEX,AGE,Date,COVID-19 Infection,SR_2 Folder thickness(mm),SR_3 Folder thickness(mm),"
        "SR_4 Folder thickness(mm)\n" + "\n".join(details) + "\n")
    return n


def baseline(root: Path) -> int:
    pat = re.compile(r"^IM\d+\.tif$")
    n = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            if pat.match(f):
                tifffile.imread(os.path.join(dirpath, f))
                n += 1
    return n


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=10)
    ap.add_argument("--slices", type=int, default=40, help="slices per series (3 series per patient)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        n = make_tree(root, args.patients, args.slices)
        baseline(root)  # warm the page cache
        t_base = timed(lambda: baseline(root), args.repeat)
        t_ver = timed(lambda: ingest_covid_ctset(root), args.repeat)
        t_nov = timed(lambda: ingest_covid_ctset(root, verify=False), args.repeat)
        assert len(ingest_covid_ctset(root, verify=False).items) == n
    print(f"{n} slices (512x512 uint16)")
    print(f"baseline walk+regex+tifffile.imread : {n / t_base:9.0f} slices/s")
    print(f"covtool ingest covid-ctset --verify  : {n / t_ver:9.0f} slices/s  ({t_ver / t_base:.2f}x baseline time)")
    print(f"covtool ingest covid-ctset --no-verify: {n / t_nov:9.0f} slices/s")


if __name__ == "__main__":
    main()
