from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from covtool.cli.app import app
from covtool.core.manifest import read_manifest

runner = CliRunner()


def test_shards_of_select_merge_back_to_the_whole(ct_patients, tmp_path):
    root, truth = ct_patients
    whole = tmp_path / "whole.csv"
    assert runner.invoke(app, ["select", str(root), "-o", str(whole)]).exit_code == 0
    parts = []
    for k in range(3):
        p = tmp_path / "shards" / f"part{k}.csv"
        assert runner.invoke(app, ["select", str(root), "-o", str(p), "--shard", f"{k}/3"]).exit_code == 0
        parts.append(str(p))
    merged = tmp_path / "merged.csv"
    r = runner.invoke(app, ["manifest", "merge", *parts, "-o", str(merged), "--expect", str(whole)])
    assert r.exit_code == 0, r.output
    a = read_manifest(whole).sort_values("id").reset_index(drop=True)
    b = read_manifest(merged).sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_index_type=False)


def test_duplicates_and_missing_items_are_named(tmp_path):
    a, b, orig = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "o.csv"
    a.write_text("id,x\n1,a\n2,b\n")
    b.write_text("id,y\n3,c\n2,d\n")
    r = runner.invoke(app, ["manifest", "merge", str(a), str(b), "-o", str(tmp_path / "m.csv")])
    assert r.exit_code == 1
    assert f"{b}:3: duplicate id '2' (also in {a}:3)" in r.output
    b.write_text("id,y\n3,c\n")
    orig.write_text("id\n1\n2\n3\n4\n")
    r = runner.invoke(app, ["manifest", "merge", str(a), str(b), "-o", str(tmp_path / "m.csv"), "--expect", str(orig)])
    assert r.exit_code == 1 and "1 item(s) missing (4)" in r.output
    assert not (tmp_path / "m.csv").exists()
    orig.write_text("id\n1\n2\n3\n")
    r = runner.invoke(app, ["manifest", "merge", str(a), str(b), "-o", str(tmp_path / "m.csv"), "--expect", str(orig)])
    assert r.exit_code == 0
    assert (tmp_path / "m.csv").read_text() == "id,x,y\n1,a,\n2,b,\n3,,c\n"
