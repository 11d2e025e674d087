"""A real two-worker MultiWorkerMirroredStrategy run on loopback: ``covtool train --strategy multiworker``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from covtool.synth.em import DEFAULT_CLASSES, write_em_dataset

ROOT = Path(__file__).resolve().parents[2]


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _wait(procs: list[subprocess.Popen], timeout: float) -> bool:
    """Wait for all; when one fails or time runs out, stop the others (a lone worker waits forever)."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        codes = [p.poll() for p in procs]
        if all(c is not None for c in codes):
            return True
        if any(c not in (None, 0) for c in codes):
            break
        time.sleep(0.2)
    for p in procs:
        if p.poll() is None:
            p.kill()
    return True


# Keras 3's Model.fit does not run under MultiWorkerMirroredStrategy (it passes PerReplica values
# where tensors are expected: keras-team/keras#20585, tensorflow/tensorflow#72388). The cluster
# itself starts and the run-folder handling below is covtool's; strict, so a fixed Keras shows up.
@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="Keras 3 fit under MultiWorkerMirroredStrategy: keras-team/keras#20585")
def test_two_workers_train_one_run(tmp_path):
    pytest.importorskip("tensorflow")
    write_em_dataset(tmp_path / "data", n_per_class=5, shape=(32, 32), particles=(1, 1),
                     classes=DEFAULT_CLASSES[:2])
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    run = tmp_path / "run"
    args = [sys.executable, "-m", "covtool", "--quiet", "train", str(tmp_path / "data" / "manifest.csv"),
            "-r", str(run), "--model", "custom", "--filters", "4,4,4,4", "--final-filters", "4",
            "--head-units", "8,8", "--input-size", "32", "--epochs", "1", "--batch-size", "4",
            "--strategy", "multiworker"]
    procs = []
    for i in range(2):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
               "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outs = [p.communicate(timeout=90)[0] if _wait(procs, 90) else "" for p in procs]
    if any("Address already in use" in o or "Failed to bind" in o for o in outs):
        pytest.skip("loopback ports could not be bound on this platform")
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out
    # one run folder, written by the chief (worker 0) only
    assert (run / "model.keras").is_file()
    assert (run / "config.json").is_file()
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 2 and history[0].startswith("epoch")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "run"]
