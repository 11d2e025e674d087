"""Seconds per patient for covtool's fully automated CT system (COVID-CTset Table 7).

Generates synthetic patients of 35, 130 and 400 slices (512x512 uint16), trains a run folder
briefly (the timing does not depend on what the model learnt), then times per patient:

* reading: decoding every slice once (a read-only pass, warm page cache);
* selection: the dark-pixel counting and threshold (read + select, minus reading);
* inference: classifying the selected slices in batches through the tf.data pipeline;
* wall time per patient with the next patient's selection prefetched during inference, and
  without (the overlap is what prefetching buys).

The paper's Table 7 (FPN on ResNet50V2, P100 GPU): 35 slices 2.30 s, 130 slices 9.88 s,
406 slices 23.65 s. Here the model is the tiny demo CNN by default (`--model custom`); pass
`--paper-model` for the FPN-ResNet50V2 at 512x512 (slow on a CPU).

    python benchmarks/bench_diagnose.py [--sizes 35,130,400] [--paper-model]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from covtool.core.imageio import read_image, write_image  # noqa: E402
from covtool.ct.pipeline import SelectOptions  # noqa: E402
from covtool.ct.series import find_series  # noqa: E402
from covtool.ct.system import diagnose_patients, group_by_patient  # noqa: E402
from covtool.synth.ct import draw_patient, patient_series  # noqa: E402

PAPER = {35: 2.3039, 130: 9.8845, 406: 23.6463}


def make_patients(root: Path, sizes: list[int]) -> None:
    import numpy as np

    for i, n in enumerate(sizes):
        spec = draw_patient(np.random.default_rng([9, i]), n, covid=bool(i % 2 == 0))
        for k, (img, _) in enumerate(patient_series(spec, seed=100 + i)):
            write_image(root / f"P{n:03d}" / "SR_2" / f"P{n:03d}_SR_2_IM{k + 1:05d}.tif", img)


def train_run(root: Path, run: Path, paper_model: bool) -> None:
    from covtool.core.manifest import write_manifest
    from covtool.synth.ct import write_ct_dataset

    truth = write_ct_dataset(root / "train", n_patients=2, slices=(12, 12), seed=5)
    truth["split"] = ["train" if g == "patient001" else "val" for g in truth["group"]]
    write_manifest(truth, root / "train.csv")
    model = (["--model", "fpn", "--batch-size", "4"] if paper_model else
             ["--model", "custom", "--filters", "8,8,16,16", "--final-filters", "8", "--head-units", "32,32",
              "--batch-size", "16"])
    size = [] if paper_model else ["--input-size", "96"]
    cmd = [sys.executable, "-m", "covtool", "--quiet", "train", str(root / "train.csv"), "-r", str(run),
           *model, *size, "--epochs", "1", "--normalize", "range", "--force"]
    subprocess.run(cmd, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="35,130,400")
    ap.add_argument("--paper-model", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"generating patients of {sizes} slices and a run folder ...", flush=True)
        make_patients(root / "patients", sizes)
        train_run(root, root / "run", args.paper_model)
        from covtool.ct.system import make_classifier
        from covtool.models.runtime import import_tensorflow

        import_tensorflow()
        classify, classes = make_classifier(root / "run", batch_size=None)
        patients = group_by_patient(find_series(root / "patients"))
        for _, series in patients:  # warm the page cache and the model
            for s in series:
                for p in s.slices:
                    p.read_bytes()
        classify([patients[0][1][0].slices[0]])
        reading = {}
        for g, series in patients:
            t0 = time.perf_counter()
            for s in series:
                for p in s.slices:
                    read_image(p)
            reading[g] = time.perf_counter() - t0
        runs: dict[bool, tuple[float, list]] = {}
        for prefetch in (False, True, False, True):  # alternate; keep each mode's best
            t0 = time.perf_counter()
            res = list(diagnose_patients(patients, classify, len(classes), SelectOptions(), prefetch=prefetch))
            dt = time.perf_counter() - t0
            if prefetch not in runs or dt < runs[prefetch][0]:
                runs[prefetch] = (dt, res)
    model = "FPN-ResNet50V2 512x512" if args.paper_model else "tiny custom CNN 96x96"
    print(f"\npatient-diagnose per patient ({model}, CPU, {os.cpu_count()} cores):")
    print(f"  {'slices':>6} {'selected':>8} {'read s':>7} {'select s':>8} {'infer s':>8} {'total s':>8}"
          f"   shares read/select/infer   paper (P100)")
    for r in runs[True][1]:
        n = r.n_slices
        read = reading[r.group]
        select = max(r.select_seconds - read, 0.0)
        total = r.select_seconds + r.infer_seconds
        paper = PAPER.get(n) or PAPER.get(min(PAPER, key=lambda k: abs(k - n)))
        print(f"  {n:6d} {r.n_selected:8d} {read:7.2f} {select:8.2f} {r.infer_seconds:8.2f} {total:8.2f}"
              f"   {100 * read / total:4.0f}% / {100 * select / total:3.0f}% / {100 * r.infer_seconds / total:3.0f}%"
              f"        {paper:6.2f} s")
    on, off = runs[True][0], runs[False][0]
    print(f"  all patients: {on:.2f} s with selection prefetched during inference, {off:.2f} s without "
          f"({off / on:.2f}x)")


if __name__ == "__main__":
    main()
