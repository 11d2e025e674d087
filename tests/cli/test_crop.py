from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from covtool.cli.app import app
from covtool.core.imageio import read_image, write_image
from covtool.core.manifest import read_manifest

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture()
def images(tmp_path):
    """Two images with known pixels: a point, a two-point line and a three-point line."""
    a = np.arange(60 * 80, dtype=np.uint16).reshape(60, 80)
    b = (np.arange(50 * 50, dtype=np.float32).reshape(50, 50) / 7)
    write_image(tmp_path / "a.tif", a)
    write_image(tmp_path / "b.tif", b)
    (tmp_path / "a.txt").write_text("# a\n40 30\n2 3 12 13\n")
    (tmp_path / "b.csv").write_text("object,vertex,x,y\n0,0,10,10\n0,1,20,20\n0,2,49,49\n")
    m = pd.DataFrame({"id": ["imgA", "imgB"], "path": ["a.tif", "b.tif"], "annotation": ["a.txt", "b.csv"],
                      "label": ["adeno", "ebola"], "split": ["train", "test"], "pixel_size_nm": [1, 1],
                      "note": ["x", "y"]})
    m.to_csv(tmp_path / "m.csv", index=False)
    return tmp_path, a, b


def test_patches_rows_and_pixels(images):
    tmp, a, b = images
    res = run("crop", tmp / "m.csv", "-d", tmp / "p", "-o", tmp / "p.csv", "--size", "16")
    assert res.exit_code == 0, res.output
    df = read_manifest(tmp / "p.csv")
    assert df["id"].tolist() == ["imgA_o000_v000", "imgA_o001_mid", "imgB_o000_v000",
                                 "imgB_o000_v001", "imgB_o000_v002"]
    assert df["group"].tolist() == ["imgA", "imgA", "imgB", "imgB", "imgB"]
    assert df["label"].tolist()[:2] == ["adeno", "adeno"] and df["split"].tolist()[2:] == ["test"] * 3
    assert df["source"].tolist()[0] == "a.tif" and df["note"].tolist()[:2] == ["x", "x"]
    assert df["center_kind"].tolist() == ["point", "midpoint", "vertex", "vertex", "vertex"]
    assert df["vertex"].tolist() == ["0", "0.5", "0", "1", "2"]
    assert (df["center_x"].iloc[1], df["center_y"].iloc[1]) == ("7", "8")
    assert "annotation" not in df.columns
    # the runner's column order: core, crop's own, the image row's other columns in input order
    assert df.columns.tolist() == ["id", "path", "label", "group", "split", "source", "object", "vertex",
                                   "center_kind", "center_x", "center_y", "patch_x0", "patch_y0",
                                   "pixel_size_nm", "note"]
    p0 = read_image(df["path"].iloc[0])
    assert p0.dtype == np.uint16 and p0.shape == (16, 16)
    np.testing.assert_array_equal(p0, a[22:38, 32:48])
    assert (int(df["patch_x0"].iloc[0]), int(df["patch_y0"].iloc[0])) == (32, 22)
    # mirror padding at the corner of b: vertex (49, 49)
    p4 = read_image(df["path"].iloc[4])
    assert p4.dtype == np.float32
    np.testing.assert_array_equal(p4, np.pad(b, 16, mode="symmetric")[41 + 16:57 + 16, 41 + 16:57 + 16])


def test_png_and_reflect(images):
    tmp, a, _ = images
    m = read_manifest(tmp / "m.csv").iloc[:1]
    m.to_csv(tmp / "one.csv", index=False)
    res = run("crop", tmp / "one.csv", "-d", tmp / "p", "-o", tmp / "p.csv", "--size", "16",
              "--format", "png", "--mirror", "reflect")
    assert res.exit_code == 0, res.output
    df = read_manifest(tmp / "p.csv")
    p1 = read_image(df["path"].iloc[1])
    assert df["path"].iloc[1].endswith(".png") and p1.dtype == np.uint16
    np.testing.assert_array_equal(p1, np.pad(a, 16, mode="reflect")[0 + 16:16 + 16, -1 + 16:15 + 16])  # x0 = 7 - 8
    res = run("crop", tmp / "one.csv", "-d", tmp / "q", "-o", tmp / "q.csv", "--format", "jpg")
    assert res.exit_code == 2 and "--format: must be one of tiff, png, got 'jpg'" in res.output
    assert not (tmp / "q").exists()


def test_bad_annotations_stop_or_are_recorded(images):
    tmp, _, _ = images
    (tmp / "a.txt").write_text("40 30\n2 3 12\n")
    (tmp / "b.csv").write_text("object,vertex,x,y\n0,0,10,99\n")
    res = run("crop", tmp / "m.csv", "-d", tmp / "p", "-o", tmp / "p.csv")
    assert res.exit_code == 1 and f"{tmp / 'a.txt'}:2: 3 numbers, expected x y pairs" in res.output
    assert not (tmp / "p").exists()
    res = run("crop", tmp / "m.csv", "-d", tmp / "p", "-o", tmp / "p.csv", "--skip-bad")
    # every item failed: the manifest with its error rows is written, then exit 1 (issue 18)
    assert res.exit_code == 1 and "all 2 items failed (see the 'error' column of" in res.output
    df = read_manifest(tmp / "p.csv")
    assert df["id"].tolist() == ["imgA", "imgB"]
    assert "3 numbers" in df["error"][2] and f"{tmp / 'b.csv'}:2: point (10, 99) is outside" in df["error"][3]
    assert df["group"].tolist() == ["imgA", "imgB"] and df["source"].tolist() == ["a.tif", "b.tif"]


def test_rows_failed_upstream_pass_through(images):
    tmp, _, _ = images
    m = read_manifest(tmp / "m.csv")
    m["error"] = ["", "unreadable TIFF"]
    m.to_csv(tmp / "e.csv", index=False)
    res = run("crop", tmp / "e.csv", "-d", tmp / "p", "-o", tmp / "p.csv", "--size", "8")
    assert res.exit_code == 0, res.output
    df = read_manifest(tmp / "p.csv")
    assert df["id"].tolist() == ["imgA_o000_v000", "imgA_o001_mid", "imgB"]
    assert df["error"].tolist() == ["", "", "unreadable TIFF"]


def test_outside_point_without_skip_removes_partial_patches(images):
    tmp, _, _ = images
    (tmp / "b.csv").write_text("object,vertex,x,y\n0,0,10,10\n1,0,10,99\n")
    res = run("crop", tmp / "m.csv", "-d", tmp / "p", "-o", tmp / "p.csv", "--size", "8")
    assert res.exit_code == 1 and "b.csv:3: point (10, 99) is outside the 50x50 image" in res.output
    assert not (tmp / "p").exists() and not (tmp / "p.csv").exists()   # the folder the run made goes too


def test_missing_annotation_column_and_existing_patch(images):
    tmp, _, _ = images
    m = read_manifest(tmp / "m.csv").drop(columns=["annotation"])
    m.to_csv(tmp / "noann.csv", index=False)
    res = run("crop", tmp / "noann.csv", "-d", tmp / "p", "-o", tmp / "p.csv")
    assert res.exit_code == 1 and "'annotation'" in res.output
    (tmp / "p").mkdir()
    (tmp / "p" / "imgB_o000_v001.tif").write_bytes(b"old")
    res = run("crop", tmp / "m.csv", "-d", tmp / "p", "-o", tmp / "p.csv", "--shard", "1/2")
    assert res.exit_code == 1 and "already exists" in res.output
    assert (tmp / "p" / "imgB_o000_v001.tif").read_bytes() == b"old"
    res = run("crop", tmp / "m.csv", "-d", tmp / "p", "-o", tmp / "p.csv", "--shard", "0/2")
    assert res.exit_code == 0 and read_manifest(tmp / "p.csv")["group"].unique().tolist() == ["imgA"]
