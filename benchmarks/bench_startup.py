"""Start-up time of the command line, against ``python -c pass`` in the same run.

covtool runs thousands of times in array jobs and shell loops, so what it costs before it does
any work matters. Measured here, each as the median of ``--repeat`` runs of a new process, the
commands taking turns so that a change in the machine's load touches all alike:

* ``python -c pass``: the interpreter alone (the floor no covtool change can lower);
* ``covtool --version`` and ``covtool --help`` (goal: at most 0.2 s each);
* ``covtool select --help`` (no goal; a command's own help imports that command's module);
* time to the first item (goal: at most 0.3 s) of two non-deep-learning stages:
  ``covtool rescale`` on a one-row manifest of a 64x64 16-bit TIFF, and ``covtool select`` on a
  folder of eight 64x64 16-bit TIFF slices.

"Before it reads its first item" is measured with an audit hook (``sys.addaudithook``): the
process ends (``os._exit``) the moment it opens a file of the input items (the TIFFs; not the
manifest). Included: the interpreter's start, every import of covtool and of the stage's own
modules, parsing the options, reading and checking the manifest, checking the outputs, planning
the work, up to that ``open``. Not included: decoding that first image (and importing its
decoder, tifffile), which is work on the item that the same library call in plain python does
too. The hook itself costs a string test per opened file (a few hundred, under a millisecond).

Two figures per command: the wall time (what a user waits) and the CPU time of the process (user +
system, from ``getrusage``), with each one's difference from ``python -c pass``. Start-up is
CPU-bound (imports), so on an idle machine the two agree; on a shared one the wall time also
counts the waits for other processes, and the CPU time does not. The verdict is on the CPU time,
so that it says the same on a busy machine; look at the wall times on an idle one.

    python benchmarks/bench_startup.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from covtool.core.imageio import write_image

MARK = "first-item-3f9c"   # only the input items' files carry this in their path

#: runs covtool's console-script entry point, ending the process when an input item is opened
DRIVER = f"""
import os, sys
def _hook(event, args, mark={MARK!r}):
    if event == "open" and isinstance(args[0], str) and mark in args[0]:
        os._exit(0)
sys.addaudithook(_hook)
from covtool.cli.app import main
try:
    main(sys.argv[1:])
finally:
    os._exit(3)   # the command ended without opening an item: not a valid measure
"""

GOALS = {"--version": 0.2, "--help": 0.2, "rescale, first item": 0.3, "select, first item": 0.3}


def make_inputs(root: Path) -> dict[str, list[str]]:
    """The commands to time, with their tiny inputs under ``root``."""
    img = np.random.default_rng(0).integers(0, 4000, (64, 64), dtype=np.uint16)
    items = root / MARK
    write_image(items / "image.tif", img)
    for k in range(8):
        write_image(items / "series" / f"IM{k:05d}.tif", img)
    manifest = root / "images.csv"
    manifest.write_text(f"id,path,pixel_size_nm\nimage,{MARK}/image.tif,0.5\n")
    out = root / "out"
    return {
        "rescale, first item": ["rescale", str(manifest), "-d", str(out / "rescaled"),
                                "-o", str(out / "rescaled.csv"), "--force"],
        "select, first item": ["select", str(items / "series"), "-o", str(out / "selected.csv"),
                               "--force"],
    }


def entry_point() -> list[str]:
    """How a user starts covtool: the console script beside this python, else ``-m covtool``."""
    script = Path(sys.executable).with_name("covtool")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "covtool"]


def _children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def run_once(cmd: list[str], first_item: bool) -> tuple[float, float]:
    """(wall, cpu) seconds of one run of ``cmd`` in a new process."""
    cpu, t = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed, cpu = time.perf_counter() - t, _children_cpu() - cpu
    if proc.returncode != 0:
        what = "never opened an item" if first_item and proc.returncode == 3 else "failed"
        raise SystemExit(f"{' '.join(cmd)}: {what} (exit {proc.returncode})\n{proc.stderr[-2000:]}")
    return elapsed, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    covtool = entry_point()
    with tempfile.TemporaryDirectory() as tmp:
        cases: dict[str, tuple[list[str], bool]] = {
            "python -c pass": ([sys.executable, "-c", "pass"], False),
            "--version": ([*covtool, "--version"], False),
            "--help": ([*covtool, "--help"], False),
            "select --help": ([*covtool, "select", "--help"], False),
        }
        for name, argv in make_inputs(Path(tmp)).items():
            cases[name] = ([sys.executable, "-c", DRIVER, *argv], True)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for cmd, first in cases.values():   # warm the page cache and the .pyc files
            run_once(cmd, first)
        for _ in range(args.repeat):
            for name, (cmd, first) in cases.items():
                times[name].append(run_once(cmd, first))
    def medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
        return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)

    base_wall, base_cpu = medians(times.pop("python -c pass"))
    print(f"covtool as {' '.join(covtool)}; median of {args.repeat} runs each")
    print(f"{'':28s} {'wall':>7s} {'(+python)':>10s} {'cpu':>7s} {'(+python)':>10s}")
    print(f"{'python -c pass':28s} {base_wall:6.3f}s {'':10s} {base_cpu:6.3f}s")
    failed = 0
    for name, runs in times.items():
        wall, cpu = medians(runs)
        goal = GOALS.get(name)
        verdict = "" if goal is None else (f"goal {goal:.1f} s: " + ("PASS" if cpu <= goal else "FAIL"))
        failed += goal is not None and cpu > goal
        print(f"{'covtool ' + name:28s} {wall:6.3f}s {wall - base_wall:+9.3f}s {cpu:6.3f}s "
              f"{cpu - base_cpu:+9.3f}s  {verdict}")
    print("all goals met" if not failed else f"{failed} goal(s) not met")


if __name__ == "__main__":
    main()
