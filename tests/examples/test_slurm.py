"""The Slurm examples on a real single-node Slurm (issue 18): the select array job with its merge,
and a two-task multi-worker training through srun on a CPU node.

Where Slurm is installed and the tests run as root on Linux, the fixture starts munged,
slurmctld and slurmd for localhost (tests/examples/slurm_single_node.sh); anywhere else the tests
skip, saying why. ``make test-slurm`` (COVTOOL_SLURM_INSTALL=1) first installs Debian's slurm-wlm
and munge with apt where it can: a plain ``make test`` never installs system packages, which
would cost a CI run minutes and a package mirror. Set COVTOOL_NO_SLURM=1 to skip them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SLURM = ROOT / "examples" / "slurm"


def _run(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def slurm():
    if os.environ.get("COVTOOL_NO_SLURM"):
        pytest.skip("COVTOOL_NO_SLURM is set")
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("a single-node Slurm needs root on Linux")
    if shutil.which("sbatch") is None or shutil.which("slurmctld") is None:
        if not os.environ.get("COVTOOL_SLURM_INSTALL"):
            pytest.skip("Slurm is not installed ('make test-slurm' installs it and runs these)")
        if shutil.which("apt-get") is None:
            pytest.skip("Slurm is not installed and there is no apt-get to install it")
        try:
            r = _run(["apt-get", "install", "-y", "-q", "slurm-wlm", "munge"], timeout=150,
                     env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        except subprocess.TimeoutExpired:
            pytest.skip("installing slurm-wlm took over 150 s (no package mirror?)")
        if r.returncode != 0:
            pytest.skip(f"could not install slurm-wlm: {r.stderr.strip().splitlines()[-1:]}")
    r = _run(["bash", str(ROOT / "tests" / "examples" / "slurm_single_node.sh")], timeout=60)
    if r.returncode != 0:
        pytest.skip(f"a single-node Slurm did not start: {r.stderr.strip()[-300:]}")
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def wait_for(job: str, env: dict, timeout: float) -> None:
    """Until Slurm says ``job`` (every task of an array) ended; assert each COMPLETED. Polled
    here: ``sbatch --wait`` checks only every few seconds, up to 30 (minutes in all)."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = _run(["scontrol", "-o", "show", "job", job], timeout=30, env=env)
        states = [w.split("=", 1)[1] for line in r.stdout.splitlines() for w in line.split()
                  if w.startswith("JobState=")]
        if states and all(s not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING") for s in states):
            assert set(states) == {"COMPLETED"}, r.stdout[-2000:]
            return
        time.sleep(0.3)
    raise AssertionError(f"job {job} still running after {timeout} s")


def sbatch(env: dict, cwd: Path, *args: str, timeout: float = 300) -> str:
    """Submit, wait until it ended, assert it completed; the job id. Resources small enough for a
    2-core test machine."""
    r = _run(["sbatch", "--parsable", "--mem=1G", "--time=00:10:00", *args], timeout=60, env=env, cwd=cwd)
    assert r.returncode == 0, r.stderr
    job = r.stdout.strip().split(";")[0]
    try:
        wait_for(job, env, timeout)
    except AssertionError:
        logs = "".join(p.read_text() for p in sorted((cwd / "logs").glob("*")) if p.is_file())
        raise AssertionError(logs[-3000:]) from None
    return job


def test_select_array_job_and_its_dependent_merge(slurm, tmp_path):
    from covtool.core.manifest import read_manifest
    from covtool.synth.ct import write_ct_dataset

    root = tmp_path / "patients"
    write_ct_dataset(root, n_patients=4, slices=(8, 12), seed=3)
    (tmp_path / "logs").mkdir()
    out = tmp_path / "out"
    array = _run(["sbatch", "--parsable", "--array=0-3", "--mem=1G", "--cpus-per-task=1",
                  str(SLURM / "select-array.sbatch"), str(root / "truth.csv"), str(out)],
                 timeout=60, env=slurm, cwd=tmp_path)
    assert array.returncode == 0, array.stderr
    job = array.stdout.strip().split(";")[0]
    sbatch(slurm, tmp_path, f"--dependency=afterok:{job}", "--kill-on-invalid-dep=yes", "--cpus-per-task=1",
           str(SLURM / "merge.sbatch"), str(root / "truth.csv"), str(out), "4")
    parts = sorted(p.name for p in (out / "parts").iterdir())
    assert parts == [f"part-{k}-of-4.csv" for k in range(4)]
    merged, truth = read_manifest(out / "selected.csv"), read_manifest(root / "truth.csv")
    assert sorted(merged["path"]) == sorted(truth["path"])           # every slice once
    assert merged["selected"].isin(["true", "false"]).all()


@pytest.mark.slow
def test_two_task_multiworker_training_through_srun_on_a_cpu_node(slurm, tmp_path):
    """``srun`` two tasks of ``covtool train --distribute multiworker``: the cluster comes from the
    Slurm step (no TF_CONFIG), the node has no GPU and no nvidia-smi on the tasks' PATH matters
    not (the resolver is told 0 GPUs); only the chief writes the run folder."""
    pytest.importorskip("tensorflow")
    from covtool.synth.em import DEFAULT_CLASSES, write_em_dataset

    write_em_dataset(tmp_path / "data", n_per_class=5, shape=(32, 32), particles=(1, 1),
                     classes=DEFAULT_CLASSES[:2])
    run = tmp_path / "run"
    script = tmp_path / "train.sbatch"
    script.write_text(
        "#!/bin/bash\nset -euo pipefail\n"
        f"srun covtool --quiet train {tmp_path / 'data' / 'manifest.csv'} -r {run} --model custom "
        "--filters 4,4,4,4 --final-filters 4 --head-units 8,8 --input-size 32 --epochs 1 "
        "--batch-size 4 --distribute multiworker\n")
    (tmp_path / "logs").mkdir()
    env = {k: v for k, v in slurm.items() if k not in ("CUDA_VISIBLE_DEVICES", "TF_CONFIG")}
    sbatch(env, tmp_path, "--nodes=1", "--ntasks=2", "--cpus-per-task=1",
           f"--output={tmp_path / 'logs' / 'train-%j.out'}", str(script), timeout=400)
    assert (run / "model.keras").is_file() and (run / "config.json").is_file()
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 2 and history[0].startswith("epoch")
