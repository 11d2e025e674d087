"""A real two-worker MultiWorkerMirroredStrategy run on loopback: ``covtool train --distribute multiworker``."""

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


@pytest.mark.slow
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
            "--distribute", "multiworker"]
    procs = []
    for i in range(2):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
               "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    _wait(procs, 300)
    outs = [p.communicate(timeout=30)[0] for p in procs]
    if any("Address already in use" in o or "Failed to bind" in o for o in outs):
        pytest.skip("loopback ports could not be bound on this platform")
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out
    # one run folder, written by the chief (worker 0) only
    assert (run / "model.keras").is_file()
    assert (run / "config.json").is_file()
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 2 and history[0].startswith("epoch")
    row = dict(zip(history[0].split(","), history[1].split(",")))
    # 6 training images, global batch 4: one whole batch; the logs are finite numbers
    assert 0 < float(row["loss"]) < 5 and 0 <= float(row["accuracy"]) <= 1
    assert 0 <= float(row["val_accuracy"]) <= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "run"]
