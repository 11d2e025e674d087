"""Speed of ``covtool select`` on 1,500 512x512 slices, against decoding the same files alone.

Three inputs, the same pixels: 16-bit TIFF slices (COVID-CTset's form: 10 patients x 150 slices),
the same slices as uncompressed DICOM series (slope 1, intercept -1024, shuffled file names), and
as RLE Lossless DICOM (a compressed syntax, written with pylibjpeg's RLE encoder; ``--no-rle``
leaves it out). For each, in interleaved rounds from a warm page cache:

* **whole process**: ``python -m covtool select INPUT -o out.csv`` (start-up, finding and
  ordering the slices, decoding, counting, writing the manifest);
* **in-process**: the same command through its function, in this process (no start-up);
* **decoding alone**, the floor: one Python process that imports only the decoder (tifffile, or
  pydicom) and decodes every file (whole process), and the same loop in this process.

Goal (issue 16): whole process within 1.5x of the decoding-alone process, for TIFF and DICOM alike
(the verdict: TIFF and uncompressed DICOM; compressed DICOM is reported beside them, its floor
being its decoder, which select runs too).

    python benchmarks/bench_select.py [--patients 10] [--slices 150] [--rounds 5] [--no-rle]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

DECODE_TIFF = """
import sys, glob, tifffile
files = sorted(glob.glob(sys.argv[1] + '/*/*.tif'))
n = 0
for f in files:
    n += tifffile.imread(f).shape[0]
print(len(files))
"""

DECODE_DICOM = """
import sys, glob, pydicom
files = sorted(glob.glob(sys.argv[1] + '/*/*.dcm'))
for f in files:
    pydicom.dcmread(f).pixel_array
print(len(files))
"""


RLE_LOSSLESS = "1.2.840.10008.1.2.5"


def make_inputs(root: Path, patients: int, slices: int, rle: bool) -> dict[str, Path]:
    from covtool.core.imageio import write_image
    from covtool.synth.ct import draw_patient, patient_series
    from covtool.synth.volumes import write_dicom_series

    inputs = {"tiff": root / "tiff", "dicom": root / "dicom"}
    if rle:
        inputs["dicom-rle"] = root / "dicom-rle"
    rng = np.random.default_rng(0)
    for p in range(patients):
        spec = draw_patient(rng, slices, covid=p % 2 == 0)
        vol = np.stack([img for img, _ in patient_series(spec, seed=p)])
        for k, img in enumerate(vol):
            write_image(inputs["tiff"] / f"P{p + 1}" / f"IM{k + 1:05d}.tif", img)
        names = [f"{k}.dcm" for k in rng.permutation(slices)]
        for kind, syntax in (("dicom", None), ("dicom-rle", RLE_LOSSLESS)):
            if kind in inputs:
                write_dicom_series(inputs[kind] / f"P{p + 1}", vol.astype(np.float64) - 1024,
                                   names=names, spacing=(0.75, 0.75), transfer_syntax=syntax,
                                   series_uid=f"1.2.826.0.1.3680043.9.7.{p + 1}")
    return inputs


def whole_process(args: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def in_process_select(folder: Path, out: Path) -> float:
    from covtool.cli.select import select_command
    from covtool.core import console

    console.state.quiet = True
    t0 = time.perf_counter()
    select_command([str(folder)], str(out), force=True)
    return time.perf_counter() - t0


def in_process_decode(folder: Path, kind: str) -> float:
    t0 = time.perf_counter()
    if kind == "tiff":
        import tifffile
        for f in sorted(folder.glob("*/*.tif")):
            tifffile.imread(f)
    else:
        import pydicom
        for f in sorted(folder.glob("*/*.dcm")):
            pydicom.dcmread(f).pixel_array  # noqa: B018
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=10)
    ap.add_argument("--slices", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--goal", type=float, default=1.5)
    ap.add_argument("--no-rle", action="store_true", help="leave the RLE-compressed DICOM input out")
    args = ap.parse_args()
    n = args.patients * args.slices
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inputs = make_inputs(root, args.patients, args.slices, not args.no_rle)
        for folder in inputs.values():
            for f in folder.rglob("*"):
                if f.is_file():
                    f.read_bytes()  # warm the page cache
        times: dict[str, list[float]] = {}
        for _ in range(args.rounds):  # interleaved, so drift hits every line alike
            for kind, folder in inputs.items():
                script = DECODE_TIFF if kind == "tiff" else DECODE_DICOM
                times.setdefault(f"{kind} decode process", []).append(
                    whole_process([sys.executable, "-c", script, str(folder)]))
                times.setdefault(f"{kind} select process", []).append(whole_process(
                    [sys.executable, "-m", "covtool", "--quiet", "select", str(folder),
                     "-o", str(root / f"{kind}.csv"), "--force"]))
                times.setdefault(f"{kind} decode in-process", []).append(in_process_decode(folder, kind))
                times.setdefault(f"{kind} select in-process", []).append(
                    in_process_select(folder, root / f"{kind}-in.csv"))
        start = [whole_process([sys.executable, "-m", "covtool", "--version"]) for _ in range(3)]
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"select benchmark: {n} slices 512x512 ({args.patients} series of {args.slices}), "
          f"warm cache, median of {args.rounds} interleaved rounds")
    print(f"  covtool start-up (--version)          {min(start):6.2f} s")
    verdict = True
    for kind in inputs:
        print(f"  {kind.upper()}")
        for what in ("decode process", "select process", "decode in-process", "select in-process"):
            t = med[f"{kind} {what}"]
            print(f"    {what:<20} {t:6.2f} s  {n / t:7.0f} slices/s")
        whole = med[f"{kind} select process"] / med[f"{kind} decode process"]
        inproc = med[f"{kind} select in-process"] / med[f"{kind} decode in-process"]
        ok = whole <= args.goal
        if kind != "dicom-rle":   # compressed: reported, its floor is the decoder select runs too
            verdict &= ok
        print(f"    select / decoding alone: whole process x{whole:.2f}, in-process x{inproc:.2f}"
              f"  [goal x{args.goal:g} for the whole process: {'met' if ok else 'NOT met'}"
              f"{', not in the verdict' if kind == 'dicom-rle' else ''}]")
    print(f"verdict: {'PASS' if verdict else 'FAIL'}")


if __name__ == "__main__":
    main()
