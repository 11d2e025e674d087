"""Speed of ``covtool select`` on a 300-slice 512x512 uint16 series, against a plain baseline.

The baseline is the straightforward approach (and that of the authors' published script): read
each slice whole with OpenCV, then count the dark pixels with a Python loop over the region's rows
and their pixels. A second reference line shows the same loop over rows with a numpy count per
row. Both are measured in the same run, on the same files, from a warm page cache, on one core.

Goal (issue 2): covtool >= 1000 slices/s and >= 5x the baseline.

    python benchmarks/bench_select.py [--slices 300] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from covtool.core.imageio import write_image  # noqa: E402
from covtool.ct.pipeline import SelectOptions, select_series  # noqa: E402
from covtool.ct.series import find_series  # noqa: E402
from covtool.synth.ct import draw_patient, patient_series  # noqa: E402

cv2.setNumThreads(1)
X0, Y0, X1, Y1 = 120, 240, 370, 340


def make_series(folder: Path, n: int) -> None:
    spec = draw_patient(np.random.default_rng(0), n, covid=True)
    for k, (img, _) in enumerate(patient_series(spec, seed=1)):
        write_image(folder / "P1" / "SR_2" / f"IM{k + 1:05d}.tif", img)


def baseline_pixels(paths: list[Path]) -> list[int]:
    counts = []
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        c = 0
        for row in img[Y0:Y1, X0:X1]:
            for v in row:
                if v < 300:
                    c += 1
        counts.append(c)
    return counts


def baseline_rows(paths: list[Path]) -> list[int]:
    counts = []
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        c = 0
        for row in img[Y0:Y1, X0:X1]:
            c += int(np.count_nonzero(row < 300))
        counts.append(c)
    return counts


def best_rate(fn, n_items: int, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return n_items / best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_series(root, args.slices)
        series = find_series(root)[0]
        paths = series.slices
        for p in paths:  # warm the page cache
            p.read_bytes()
        n = len(paths)
        ours, res = best_rate(lambda: select_series(series, SelectOptions()), n, args.repeat)
        base_sub = paths[: max(20, n // 10)]  # the per-pixel loop is slow; time a tenth
        base, bcounts = best_rate(lambda: baseline_pixels(base_sub), len(base_sub), 1)
        rows, rcounts = best_rate(lambda: baseline_rows(paths), n, args.repeat)
        ours_counts = [s.dark_pixels for s in res.slices]
        assert ours_counts[: len(bcounts)] == bcounts and ours_counts == rcounts, "counts differ"
    print(f"select benchmark: {n} slices 512x512 uint16, one core, warm cache")
    print(f"  covtool select                          {ours:8.0f} slices/s")
    print(f"  baseline: OpenCV + Python pixel loop    {base:8.0f} slices/s   (covtool x{ours / base:.1f})")
    print(f"  reference: OpenCV + loop over rows      {rows:8.0f} slices/s   (covtool x{ours / rows:.1f})")
    print(f"  goal: >= 1000 slices/s [{'met' if ours >= 1000 else 'NOT met'}], "
          f">= 5x baseline [{'met' if ours / base >= 5 else 'NOT met'}]")
    print(f"  {res.n_selected} of {n} slices selected, threshold {res.threshold:.1f}")


if __name__ == "__main__":
    main()
