"""Shared fixtures: generated data only; real data under ../shared/data is optional."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def covtool_env() -> dict:
    """Environment for running ``python -m covtool`` in a subprocess on this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def covtool_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "covtool", *args]


@pytest.fixture(autouse=True)
def _reset_run_state():
    """CLI invocations in one process must not leak --debug/--quiet into each other."""
    from covtool.core import console

    console.state.debug = False
    console.state.quiet = False
    yield
    console.state.debug = False
    console.state.quiet = False


@pytest.fixture(scope="session")
def ct_patients(tmp_path_factory):
    """Three small synthetic CT patients (16-bit TIFF), generated once per test session."""
    from covtool.synth.ct import write_ct_dataset

    root = tmp_path_factory.mktemp("ct") / "patients"
    truth = write_ct_dataset(root, n_patients=3, slices=(16, 22), seed=7)
    return root, truth


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test when it is absent (a fresh clone)."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not present: {p}")
    return p


@pytest.fixture(scope="session")
def ct_run(ct_patients, tmp_path_factory):
    """A tiny slice classifier trained on the synthetic patients (a run folder), once per session."""
    from typer.testing import CliRunner

    from covtool.cli.app import app

    root, truth = ct_patients
    work = tmp_path_factory.mktemp("ctrun")
    m = work / "slices.csv"
    t = truth.copy()
    t["split"] = ["train" if g != "patient003" else "val" for g in t["group"]]
    t.to_csv(m, index=False)
    run = work / "run"
    r = CliRunner().invoke(app, [
        "train", str(m), "-r", str(run), "--model", "custom", "--input-size", "32",
        "--filters", "4,4,8,8", "--final-filters", "4", "--head-units", "8,8", "--dropout", "0",
        "--block-dropout", "0", "--bn-momentum", "0.8", "--optimizer", "adam", "--lr", "3e-3",
        "--batch-size", "16", "--epochs", "2", "--normalize", "range"])
    assert r.exit_code == 0, r.output
    return run
