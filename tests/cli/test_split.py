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
    assert r.exit_code == 2 and "--strategy: is required" in r.output and "or --from a manifest" in r.output
    assert not (tmp_path / "o.csv").exists()


def test_option_combinations_exit_2_naming_the_flags_before_any_work(tmp_path):
    out = tmp_path / "o.csv"
    absent = tmp_path / "absent.csv"  # never read: the options are refused first

    def split(*args):
        return runner.invoke(app, ["split", str(absent), "-o", str(out), *map(str, args)])

    cases = [
        (["--strategy", "clever"], "--strategy: must be one of representative, bad, random, kfold, got 'clever'"),
        (["--from", absent, "--strategy", "bad"], "--from: inherits a split; do not give --strategy too"),
        (["--strategy", "bad", "--fold", "1"], "--fold: needs --strategy kfold"),
        (["--strategy", "kfold", "--folds", "3", "--fold", "3"], "--fold: 3 is outside 0..2"),
        (["--strategy", "kfold", "--val-fold", "1"], "--val-fold: needs --fold and must be another fold in 0..4"),
        (["--strategy", "kfold", "--fold", "1", "--val-fold", "1"], "--val-fold: needs --fold"),
        (["--strategy", "random", "--fractions", "0.5,0.5"], "--fractions: expects three numbers"),
        (["--strategy", "bad", "--fractions", "0.5,0.5,0.5"], "--fractions: must be three non-negative numbers"),
    ]
    for args, message in cases:
        r = split(*args)
        assert r.exit_code == 2 and message in r.output, (args, r.output)
    assert not out.exists()


def test_shell_pipe_round_trip(tmp_path):
    m = tmp_path / "images.csv"
    write_images(m)
    cmd = (subprocess.list2cmdline(covtool_cmd("--quiet", "split", str(m), "-o", "-", "--strategy", "random", "--seed", "3"))
           + " | " + subprocess.list2cmdline(covtool_cmd("split", "check", "-")))
    proc = subprocess.run(cmd, shell=True, env=covtool_env(), capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ok: 12 rows" in proc.stderr


def test_help_shows_the_default_form_and_both_forms_parse(tmp_path):
    r = runner.invoke(app, ["split", "--help"])
    assert r.exit_code == 0
    assert "Usage: covtool split [OPTIONS]" in r.output and "--strategy" in r.output and "make" not in r.output
    r = runner.invoke(app, ["split", "check", "--help"])
    assert r.exit_code == 0 and "Usage: covtool split check [OPTIONS]" in r.output
    m = tmp_path / "images.csv"
    write_images(m)
    # options before the manifest still reach the default form; usage errors name 'covtool split'
    r = runner.invoke(app, ["split", "--strategy", "bad", "-o", str(tmp_path / "o.csv"), str(m)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["split", str(m)])
    assert r.exit_code == 2 and "(see 'covtool split --help')" in r.output and "make" not in r.output


def test_patches_without_label_take_class_from_images_for_the_table(tmp_path):
    images = tmp_path / "images.csv"
    images.write_text("id,label,split\nA,x,train\nB,x,val\nC,x,test\nD,y,train\n")
    patches = tmp_path / "patches.csv"
    patches.write_text("id,group\np1,A\np2,A\np3,A\np4,B\np5,C\np6,C\np7,D\n")
    out, table = tmp_path / "p.csv", tmp_path / "table.csv"
    r = runner.invoke(app, ["split", str(patches), "-o", str(out), "--from", str(images), "--table", str(table)])
    assert r.exit_code == 0, r.output
    assert read_manifest(out)["split"].tolist() == ["train"] * 3 + ["val", "test", "test", "train"]
    t = pd.read_csv(table).set_index("class")
    # no 'particles' column: the count is the number of rows (patches) of each group
    assert t.loc["x", ["images_train", "images_val", "images_test", "count_train", "count_val", "count_test"]].tolist() == [1, 1, 1, 3, 1, 2]
    assert t.loc["y", ["images_train", "count_train", "count_total"]].tolist() == [1, 1, 1]


def test_failure_leaves_no_output(tmp_path):
    images = tmp_path / "images.csv"
    images.write_text("id,split\nA,train\nB,test\n")
    patches = tmp_path / "patches.csv"
    patches.write_text("id,group\np1,A\np2,B\n")
    out, table = tmp_path / "p.csv", tmp_path / "table.csv"
    r = runner.invoke(app, ["split", str(patches), "-o", str(out), "--from", str(images), "--table", str(table)])
    assert r.exit_code == 1 and "no 'label' column here or in --from" in r.output
    assert not out.exists() and not table.exists()
    # without --table the class is not needed
    r = runner.invoke(app, ["split", str(patches), "-o", str(out), "--from", str(images)])
    assert r.exit_code == 0, r.output
    assert read_manifest(out)["split"].tolist() == ["train", "test"]


def test_kfold_table_counts_groups_per_fold(tmp_path):
    m, out, table = tmp_path / "images.csv", tmp_path / "folds.csv", tmp_path / "table.csv"
    write_images(m, n_per_class=7)
    r = runner.invoke(app, ["split", str(m), "-o", str(out), "--strategy", "kfold", "--folds", "3", "--table", str(table)])
    assert r.exit_code == 0, r.output
    t = pd.read_csv(table).set_index("class")
    assert list(t.columns) == ["groups_fold_0", "groups_fold_1", "groups_fold_2"]
    assert t.sum(axis=1).tolist() == [7, 7] and (t.max(axis=1) - t.min(axis=1)).max() <= 1
    df = read_manifest(out)
    assert t.loc["adeno"].tolist() == [int(((df["label"] == "adeno") & (df["fold"] == str(k))).sum()) for k in range(3)]


def test_bad_input_without_traceback(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("label,particles\nx,1\nx,2\nx,3\nx,4\n")
    r = runner.invoke(app, ["split", str(m), "-o", str(tmp_path / "o.csv"), "--strategy", "representative"])
    assert r.exit_code == 1 and f"{m}:1: missing column group (or id" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    m.write_text("id,label,particles\na,x,1\nb,x,2\nc,x,3\nd,y,4\n")
    r = runner.invoke(app, ["split", str(m), "-o", str(tmp_path / "o.csv"), "--strategy", "kfold", "--folds", "3"])
    assert r.exit_code == 1 and f"{m}: class 'y' has 1 group(s)" in r.output
    assert not (tmp_path / "o.csv").exists()


def test_check_fold_manifest_with_a_class_missing_from_a_test_part(tmp_path):
    m = tmp_path / "folds.csv"
    m.write_text("id,group,label,fold\n1,P1,covid,0\n2,P2,covid,1\n3,P3,normal,0\n4,P4,normal,0\n")
    r = runner.invoke(app, ["split", "check", str(m)])
    assert r.exit_code == 1 and "class 'normal' is missing from the test part of fold 1" in r.output


def test_check_names_the_line_of_an_empty_label_or_group(tmp_path):
    head = "id,path,label,group,split\na,a.tif,adeno,g1,train\nb,b.tif,adeno,g2,val\nc,c.tif,adeno,g3,test\n"
    for name, last, message in (
        ("label.csv", "d,d.tif,,g4,test\n", "label.csv:5: empty value in column 'label'"),
        ("group.csv", "d,d.tif,adeno,,test\n", "group.csv:5: empty value in column 'group'"),
    ):
        m = tmp_path / name
        m.write_text(head + last)
        r = runner.invoke(app, ["split", "check", str(m)])
        assert r.exit_code == 1 and r.output.strip() == f"covtool: error: {tmp_path / message}", r.output
    m = tmp_path / "unlabelled.csv"        # no label anywhere: no class to check, the groups are
    m.write_text("id,path,label,group,split\na,a.tif,,g1,train\nb,b.tif,,g1,test\n")
    r = runner.invoke(app, ["split", "check", str(m)])
    assert r.exit_code == 1 and "1 group(s) in two splits: g1" in r.output and "class" not in r.output
