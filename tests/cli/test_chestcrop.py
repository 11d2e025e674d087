"""``covtool chest-crop`` on generated CT images in COVID-CT's formats (and the real release)."""

from __future__ import annotations

import csv
import subprocess

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from covtool.cli.app import app
from covtool.core.imageio import read_image, write_image
from covtool.core.manifest import read_table
from tests.conftest import covtool_cmd, covtool_env, shared_data
from tests.ct.test_chestcrop import chest, ellipse_box

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def release(tmp_path):
    """Four images as COVID-CT stores them (grey, RGB, RGBA PNG and JPEG data in a .png), each a
    body on black air inside a white page margin of 10 px, one with a lesion mask."""
    grey = np.full((140, 180), 255, np.uint8)
    grey[10:130, 10:170] = chest()
    images = tmp_path / "images"
    images.mkdir()
    write_image(images / "grey.png", grey)
    write_image(images / "rgb.png", np.dstack([grey] * 3))
    write_image(images / "rgba.png", np.dstack([grey] * 3 + [np.full_like(grey, 255)]))
    ok, data = cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, 95])
    (images / "jpeg.png").write_bytes(data.tobytes())
    mask = np.zeros_like(grey)
    mask[60:80, 40:60] = 255
    write_image(images / "grey_mask.png", mask)
    rows = [("grey", "grey.png", "train", "grey_mask.png"), ("rgb", "rgb.png", "val", ""),
            ("rgba", "rgba.png", "test", ""), ("jpeg", "jpeg.png", "test", "")]
    manifest = tmp_path / "m.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "path", "label", "split", "mask", "note"])
        for iid, p, split, m in rows:
            w.writerow([iid, f"images/{p}", "covid", split, f"images/{m}" if m else "", f"n-{iid}"])
    box = tuple(v + 10 for v in ellipse_box(chest() > 100))
    return manifest, grey, mask, box


def test_every_format_cropped_to_the_body_columns_carried(release, tmp_path):
    manifest, grey, mask, box = release
    out = tmp_path / "out.csv"
    res = run("chest-crop", manifest, "-d", tmp_path / "crops", "-o", out)
    assert res.exit_code == 0, res.output
    table = read_table(out)
    assert table.columns[:8] == ["id", "path", "label", "split", "mask", "crop_box", "width", "height"]
    x0, y0, x1, y1 = box
    channels = {"grey": 1, "rgb": 3, "rgba": 4, "jpeg": 1}
    for row in table.rows:
        assert row.text("note") == f"n-{row.text('id')}"
        assert row.path().parent == tmp_path / "crops" and row.path().suffix == ".png"
        crop = read_image(row.path())
        assert (1 if crop.ndim == 2 else crop.shape[2]) == channels[row.text("id")]
        assert (row.integer("source_width"), row.integer("source_height")) == (180, 140)
        assert (row.integer("width"), row.integer("height")) == (crop.shape[1], crop.shape[0])
        if row.text("id") != "jpeg":          # JPEG noise may move the edge by a pixel
            assert row.text("crop_box") == f"{x0},{y0},{x1},{y1}"
            assert np.array_equal(crop if crop.ndim == 2 else crop[..., 0], grey[y0:y1, x0:x1])
        else:
            got = [int(v) for v in row.text("crop_box").split(",")]
            assert max(abs(a - b) for a, b in zip(got, box)) <= 1
    grey_row = next(r for r in table.rows if r.text("id") == "grey")
    assert np.array_equal(read_image(grey_row.path("mask")), mask[y0:y1, x0:x1])
    assert not any(r.has("mask") for r in table.rows if r.text("id") != "grey")


def test_split_crops_only_those_rows(release, tmp_path):
    manifest, _, _, _ = release
    out = tmp_path / "out.csv"
    res = run("chest-crop", manifest, "-d", tmp_path / "crops", "-o", out, "--split", "val,test")
    assert res.exit_code == 0, res.output
    rows = {r.text("id"): r for r in read_table(out).rows}
    assert rows["grey"].path() == manifest.parent / "images" / "grey.png"     # passed through
    assert rows["grey"].path("mask") == manifest.parent / "images" / "grey_mask.png"
    assert not rows["grey"].has("crop_box")
    assert all(rows[i].has("crop_box") and rows[i].path().parent.name == "crops"
               for i in ("rgb", "rgba", "jpeg"))
    assert sorted(p.name for p in (tmp_path / "crops").iterdir()) == ["jpeg.png", "rgb.png", "rgba.png"]


def test_mask_of_another_size_is_one_line_naming_it(release, tmp_path):
    manifest, grey, _, _ = release
    write_image(manifest.parent / "images" / "grey_mask.png", np.zeros((10, 10), np.uint8), force=True)
    res = run("chest-crop", manifest, "-d", tmp_path / "crops", "-o", tmp_path / "o.csv")
    assert res.exit_code == 1
    line = res.output.strip().splitlines()[-1]
    assert "grey_mask.png: mask is 10x10, its image" in line and "180x140" in line
    assert not (tmp_path / "o.csv").exists() and not any((tmp_path / "crops").glob("*"))


def test_bad_image_skip_bad_and_bad_usage(release, tmp_path):
    manifest, _, _, _ = release
    (manifest.parent / "images" / "rgb.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    res = run("chest-crop", manifest, "-d", tmp_path / "c1", "-o", tmp_path / "o1.csv")
    assert res.exit_code == 1 and "rgb.png" in res.output.strip().splitlines()[-1]
    assert not (tmp_path / "o1.csv").exists()
    res = run("chest-crop", manifest, "-d", tmp_path / "c2", "-o", tmp_path / "o2.csv", "--skip-bad")
    assert res.exit_code == 0, res.output
    rows = {r.text("id"): r for r in read_table(tmp_path / "o2.csv").rows}
    assert "rgb.png" in rows["rgb"].text("error") and not rows["grey"].text("error")
    for args, flag in ((("--split", "tset"), "--split"), (("--margin", "-2"), "--margin"),
                       (("--split", ","), "--split")):
        res = run("chest-crop", manifest, "-d", tmp_path / "c3", "-o", tmp_path / "o3.csv", *args)
        assert res.exit_code == 2 and flag in res.output, res.output
    assert not (tmp_path / "c3").exists()


def test_pipe_through_a_real_process(release, tmp_path):
    manifest, _, _, box = release
    proc = subprocess.run(covtool_cmd("-q", "chest-crop", "-", "-d", str(tmp_path / "c"), "-o", "-",
                                      "--split", "train"),
                          input=manifest.read_text(), capture_output=True, text=True,
                          cwd=manifest.parent, env=covtool_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("id,path,label,split,mask,crop_box")
    assert f'"{",".join(map(str, box))}"' in lines[1] and len(lines) == 5


@pytest.mark.realdata
def test_real_release_val_and_test(tmp_path):
    """The release's val/test images: every one cropped, none failed, the body kept (tests/ct)."""
    from covtool.datasets.covid_ct import ingest_covid_ct

    res = ingest_covid_ct(shared_data("covid-ct"), verify=False)
    df = res.items[res.items["split"].isin(["val", "test"])].head(20)
    manifest = tmp_path / "m.csv"
    df.to_csv(manifest, index=False)
    out = tmp_path / "o.csv"
    r = run("chest-crop", manifest, "-d", tmp_path / "c", "-o", out, "--split", "val,test")
    assert r.exit_code == 0, r.output
    rows = read_table(out).rows
    assert len(rows) == 20 and all(row.has("crop_box") for row in rows)
    areas = [row.integer("width") * row.integer("height")
             / (row.integer("source_width") * row.integer("source_height")) for row in rows]
    assert min(areas) >= 0.5 and any(a < 1 for a in areas)
