from __future__ import annotations

import subprocess

import pandas as pd
from typer.testing import CliRunner

from covtool.cli.app import app
from covtool.core.manifest import read_manifest
from tests.conftest import covtool_cmd, covtool_env

runner = CliRunner()


def write_images(path, n_per_class=6):
    rows = []
    for c in ("adeno", "ebola"):
        for k in range(n_per_class):
            rows.append({"id": f"{c}{k}", "path": f"img/{c}{k}.tif", "label": c, "particles": k * 3 + 1, "note": f"n{k}"})
    pd.DataFrame(rows).to_csv(path, index=False)


def test_representative_split_table_and_check(tmp_path):
    m, out, table = tmp_path / "images.csv", tmp_path / "split.csv", tmp_path / "table.csv"
    write_images(m)
    r = runner.invoke(app, ["split", str(m), "-o", str(out), "--strategy", "representative", "--table", str(table)])
    assert r.exit_code == 0, r.output
    df = read_manifest(out)
    assert df["note"].tolist() == [f"n{k}" for k in range(6)] * 2  # unknown columns pass through
    # ascending counts = id order: train test train val train train
    assert df["split"].tolist()[:6] == ["train", "test", "train", "val", "train", "train"]
    t = pd.read_csv(table)
    assert t.set_index("class").loc["total", "images_total"] == 12
    assert t.set_index("class").loc["adeno", "particles_train"] == 1 + 7 + 13 + 16
    assert runner.invoke(app, ["split", "check", str(out)]).exit_code == 0


def test_patches_inherit_their_image_split(tmp_path):
    m, images = tmp_path / "images.csv", tmp_path / "split.csv"
    write_images(m)
    assert runner.invoke(app, ["split", str(m), "-o", str(images), "--strategy", "bad"]).exit_code == 0
    split_of = read_manifest(images).set_index("id")["split"]
    patches = pd.DataFrame({"id": [f"p{k}" for k in range(24)], "group": [f"{c}{k % 6}" for c in ("adeno", "ebola") for k in range(12)],
                            "label": ["adeno"] * 12 + ["ebola"] * 12})
    p = tmp_path / "patches.csv"
    patches.to_csv(p, index=False)
    out = tmp_path / "psplit.csv"
    r = runner.invoke(app, ["split", str(p), "-o", str(out), "--from", str(images)])
    assert r.exit_code == 0, r.output
    got = read_manifest(out)
    assert (got["split"] == got["group"].map(split_of)).all()
    # a patch whose group is unknown
    patches.loc[3, "group"] = "nowhere"
    patches.to_csv(p, index=False)
    r = runner.invoke(app, ["split", str(p), "-o", str(out), "--from", str(images), "--force"])
    assert r.exit_code == 1 and f"{p}:5: group 'nowhere' is not in" in r.output


def test_kfold_with_a_chosen_fold(tmp_path):
    m, out = tmp_path / "images.csv", tmp_path / "folds.csv"
    write_images(m, n_per_class=10)
    r = runner.invoke(app, ["split", str(m), "-o", str(out), "--strategy", "kfold", "--folds", "5", "--fold", "2", "--seed", "1"])
    assert r.exit_code == 0, r.output
    df = read_manifest(out)
    assert sorted(df["fold"].astype(int).value_counts().tolist()) == [4] * 5
    assert ((df["fold"] == "2") == (df["split"] == "test")).all()
    assert runner.invoke(app, ["split", "check", str(out)]).exit_code == 0


def test_check_names_leaking_groups(tmp_path):
    m = tmp_path / "leak.csv"
    m.write_text("id,group,label,split\n1,P1,covid,train\n2,P1,covid,test\n3,P2,normal,train\n4,P3,covid,val\n")
    r = runner.invoke(app, ["split", "check", str(m)])
    assert r.exit_code == 1
    assert "1 group(s) in two splits: P1" in r.output and "class 'normal' is missing from test, val" in r.output


def test_bad_input(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("id,label,particles\na,x,1\nb,x,2\na,x,3\n")
    r = runner.invoke(app, ["split", str(m), "-o", str(tmp_path / "o.csv"), "--strategy", "bad"])
    assert r.exit_code == 1 and f"{m}:4: duplicate id 'a'" in r.output
    m.write_text("id,particles\na,1\n")
    r = runner.invoke(app, ["split", str(m), "-o", str(tmp_path / "o.csv"), "--strategy", "bad"])
    assert r.exit_code == 1 and "missing column label" in r.output
    m.write_text("id,label,particles\na,x,1\nb,x,2\nc,x,3\n")
    r = runner.invoke(app, ["split", str(m), "-o", str(tmp_path / "o.csv"), "--strategy", "representative"])
    assert r.exit_code == 1 and "class 'x' has 3 group(s)" in r.output
    r = runner.invoke(app, ["split", str(m), "-o", str(tmp_path / "o.csv")])
    assert r.exit_code == 1 and "--strategy is required" in r.output
    assert not (tmp_path / "o.csv").exists()


def test_shell_pipe_round_trip(tmp_path):
    m = tmp_path / "images.csv"
    write_images(m)
    cmd = (subprocess.list2cmdline(covtool_cmd("--quiet", "split", str(m), "-o", "-", "--strategy", "random", "--seed", "3"))
           + " | " + subprocess.list2cmdline(covtool_cmd("split", "check", "-")))
    proc = subprocess.run(cmd, shell=True, env=covtool_env(), capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ok: 12 rows" in proc.stderr
