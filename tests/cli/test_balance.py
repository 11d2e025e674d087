from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from covtool.cli.app import app
from covtool.core.imageio import read_image
from covtool.core.manifest import read_manifest
from covtool.em.balance import apply_transform
from covtool.synth.em import write_em_dataset

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def patch_manifest(path: Path) -> None:
    rows = [{"id": f"{lab}{i}", "path": f"{lab}{i}.tif", "label": lab, "split": split, "group": f"g{i}"}
            for lab, n in (("a", 3), ("b", 9)) for i in range(n)
            for split in ["train" if i % 4 else "val"]]
    pd.DataFrame(rows).to_csv(path, index=False)


def test_balance_command(tmp_path):
    patch_manifest(tmp_path / "p.csv")
    res = run("balance", tmp_path / "p.csv", "-o", tmp_path / "b.csv", "--per-class", "5", "--seed", "7")
    assert res.exit_code == 0, res.output
    df = read_manifest(tmp_path / "b.csv")
    train = df[df["split"] == "train"]
    assert train["label"].value_counts().to_dict() == {"a": 5, "b": 5}
    assert (df[df["split"] == "val"]["transform"] == "rot90_k0").all()
    assert len(df[df["split"] == "val"]) == 4
    assert "balance (train split)" in res.output
    again = tmp_path / "b2.csv"
    run("balance", tmp_path / "p.csv", "-o", again, "--per-class", "5", "--seed", "7")
    assert again.read_text() == (tmp_path / "b.csv").read_text()
    res = run("balance", tmp_path / "b.csv", "-o", tmp_path / "b3.csv")
    assert res.exit_code == 1 and "already balanced" in res.output
    res = run("balance", tmp_path / "p.csv", "-o", tmp_path / "b.csv")
    assert res.exit_code == 1 and "already exists" in res.output
    pd.DataFrame({"id": ["x"], "path": ["x.tif"], "label": ["a"]}).to_csv(tmp_path / "nosplit.csv", index=False)
    res = run("balance", tmp_path / "nosplit.csv", "-o", tmp_path / "n.csv")
    assert res.exit_code == 1 and "missing column split" in res.output


def test_pipe_rescale_crop_balance(tmp_path):
    """The three stages chained through real pipes, as a shell script would."""
    write_em_dataset(tmp_path / "data", n_per_class=2, shape=(80, 80), pixel_sizes=(1.5, 2.5), seed=1)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "covtool"]
    p1 = subprocess.Popen([*cmd, "rescale", "data/manifest.csv", "-d", "r", "-o", "-"], cwd=tmp_path,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p2 = subprocess.Popen([*cmd, "crop", "-", "-d", "p", "-o", "-", "--size", "64"], cwd=tmp_path, env=env,
                          stdin=p1.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p1.stdout.close()
    p3 = subprocess.run([*cmd, "balance", "-", "-o", "b.csv", "--per-class", "6"], cwd=tmp_path, env=env,
                        stdin=p2.stdout, capture_output=True, text=True, timeout=120)
    p2.stdout.close()
    assert p1.wait(timeout=120) == 0, p1.stderr.read()
    assert p2.wait(timeout=120) == 0, p2.stderr.read()
    assert p3.returncode == 0, p3.stderr
    df = read_manifest(tmp_path / "b.csv")
    train = df[df["split"] == "train"]
    assert train["label"].value_counts().to_dict() == {"adeno": 6, "corona": 6, "ebola": 6, "orf": 6}
    assert (df["pixel_size_nm"] == "1").all()
    row = train[train["transform"] != "rot90_k0"].iloc[0]
    patch = read_image(row["path"])
    assert patch.shape == (64, 64) and patch.dtype == np.uint16
    assert apply_transform(patch, row["transform"]).shape == (64, 64)


def test_a_split_no_row_has_is_a_usage_error_naming_the_splits_present(tmp_path):
    patch_manifest(tmp_path / "p.csv")
    res = run("balance", tmp_path / "p.csv", "-o", tmp_path / "b.csv", "--split", "trian")
    assert res.exit_code == 2 and not (tmp_path / "b.csv").exists()
    assert (f"covtool: error: {tmp_path / 'p.csv'}: --split: no row has split 'trian' (splits "
            "present: train, val)") in " ".join(res.output.split())
