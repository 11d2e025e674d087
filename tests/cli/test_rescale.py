from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from covtool.cli.app import app
from covtool.core import console
from covtool.core.imageio import read_image, write_image
from covtool.core.manifest import read_manifest
from covtool.em.annotations import read_annotations
from covtool.em.resample import lanczos3_resize
from covtool.synth.em import write_em_dataset

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def em_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("em") / "data"
    truth = write_em_dataset(root, n_per_class=2, shape=(96, 96), pixel_sizes=(0.6, 1.8), masks=True, seed=4)
    return root, truth


def test_rescale_images_annotations_and_masks(em_data, tmp_path):
    root, truth = em_data
    out = tmp_path / "r.csv"
    res = run("rescale", root / "manifest.csv", "-d", tmp_path / "r", "-o", out)
    assert res.exit_code == 0, res.output
    df = read_manifest(out)
    assert df["id"].tolist() == truth["id"].tolist()
    for (_, row), (_, t) in zip(df.iterrows(), truth.iterrows()):
        src = read_image(t["path"])
        img = read_image(row["path"])
        px = float(t["pixel_size_nm"])
        assert float(row["pixel_size_nm"]) == 1.0 and float(row["source_pixel_size_nm"]) == px
        assert img.dtype == np.uint16
        np.testing.assert_array_equal(img, lanczos3_resize(src, px))
        assert (int(row["width"]), int(row["height"])) == (img.shape[1], img.shape[0])
        a0, a1 = read_annotations(t["annotation"]), read_annotations(row["annotation"])
        for p0, p1 in zip(a0, a1):
            np.testing.assert_allclose(p1.vertices, (p0.vertices + 0.5) * px - 0.5, atol=1e-3)
        assert read_image(row["mask"]).shape == img.shape
        assert row["source"] == f"{t['id']}.tif"
    assert "rescale" in res.output


def test_target_option_center_columns_and_stdout(em_data, tmp_path):
    root, truth = em_data
    m = truth.iloc[:1].copy()
    m["center_x"] = [10.0]
    m["center_y"] = [""]
    m.to_csv(tmp_path / "one.csv", index=False)
    try:
        res = runner.invoke(app, ["--quiet", "rescale", str(tmp_path / "one.csv"), "-d", str(tmp_path / "r"),
                                  "-o", "-", "--pixel-size", "2"])
    finally:
        console.state.quiet = False   # --quiet must not leak into later in-process runs
    assert res.exit_code == 0, res.output
    line = res.stdout.splitlines()
    df = pd.read_csv(io.StringIO(res.stdout))
    assert len(line) == 2 and float(df["pixel_size_nm"][0]) == 2.0
    scale = float(truth["pixel_size_nm"][0]) / 2
    assert df["center_x"][0] == pytest.approx((10 + 0.5) * scale - 0.5, abs=1e-4)


def test_bad_pixel_sizes_name_the_line_and_skip_bad(em_data, tmp_path):
    root, truth = em_data
    m = truth.drop(columns=["mask"]).copy()
    m["pixel_size_nm"] = m["pixel_size_nm"].astype(object)
    m.loc[2, "pixel_size_nm"] = "-1"
    m.loc[3, "pixel_size_nm"] = ""
    m.to_csv(tmp_path / "m.csv", index=False)
    res = run("rescale", tmp_path / "m.csv", "-d", tmp_path / "r", "-o", tmp_path / "o.csv")
    assert res.exit_code == 1
    assert "m.csv:4: pixel size -1 nm in 'pixel_size_nm' must be positive" in res.output
    assert not (tmp_path / "r").exists() and not (tmp_path / "o.csv").exists()   # nothing done
    res = run("rescale", tmp_path / "m.csv", "-d", tmp_path / "r", "-o", tmp_path / "o.csv", "--skip-bad")
    assert res.exit_code == 0, res.output
    df = read_manifest(tmp_path / "o.csv")
    assert "must be positive" in df["error"][4] and "missing pixel size" in df["error"][5]
    assert (df["error"].drop([4, 5]) == "").all()
    # --default-pixel-size fills the empty cell
    res = run("rescale", tmp_path / "m.csv", "-d", tmp_path / "r2", "-o", tmp_path / "o2.csv",
              "--skip-bad", "--default-pixel-size", "1.5")
    df = read_manifest(tmp_path / "o2.csv")
    assert df["error"][5] == "" and float(df["source_pixel_size_nm"][5]) == 1.5


def test_unreadable_image_and_outside_point(em_data, tmp_path):
    root, truth = em_data
    bad_img = tmp_path / "broken.tif"
    bad_img.write_bytes(b"II*\x00garbage")
    ann = tmp_path / "far.txt"
    ann.write_text("5 5\n500 5\n")
    write_image(tmp_path / "ok.tif", np.zeros((20, 20), np.uint8))
    pd.DataFrame({"id": ["a", "b"], "path": [str(bad_img), str(tmp_path / "ok.tif")],
                  "annotation": ["", str(ann)], "pixel_size_nm": [1, 1]}).to_csv(tmp_path / "m.csv", index=False)
    res = run("rescale", tmp_path / "m.csv", "-d", tmp_path / "r", "-o", tmp_path / "o.csv")
    assert res.exit_code == 1 and f"{bad_img}: " in res.output and "TIFF" in res.output
    res = run("rescale", tmp_path / "m.csv", "-d", tmp_path / "r", "-o", tmp_path / "o.csv", "--skip-bad")
    df = read_manifest(tmp_path / "o.csv")
    assert str(bad_img) in df["error"][2] and "TIFF" in df["error"][2]
    assert f"{ann}:2: point (500, 5) is outside the 20x20 image" in df["error"][3]


def test_existing_outputs_refused_and_shards(em_data, tmp_path):
    root, truth = em_data
    args = [root / "manifest.csv", "-d", tmp_path / "r", "-o", tmp_path / "o.csv"]
    assert run("rescale", *args, "--shard", "1/3").exit_code == 0
    df = read_manifest(tmp_path / "o.csv")
    assert df["id"].tolist() == truth["id"].tolist()[1::3]
    res = run("rescale", root / "manifest.csv", "-d", tmp_path / "r", "-o", tmp_path / "o2.csv", "--shard", "1/3")
    assert res.exit_code == 1 and "already exists" in res.output
    assert run("rescale", root / "manifest.csv", "-d", tmp_path / "r", "-o", tmp_path / "o2.csv",
               "--shard", "1/3", "--force").exit_code == 0
    res = run("rescale", root / "manifest.csv", "-d", tmp_path / "r", "-o", tmp_path / "o3.csv", "--shard", "3/3")
    assert res.exit_code == 2 and "--shard: shard index 3 is outside 0..2 (K is 0-based)" in res.output


def test_old_option_name_still_works_with_a_warning(em_data, tmp_path):
    root, truth = em_data
    m = truth.drop(columns=["pixel_size_nm", "mask"]).iloc[:1]
    m.to_csv(tmp_path / "m.csv", index=False)
    res = run("rescale", tmp_path / "m.csv", "-d", tmp_path / "r", "-o", tmp_path / "o.csv",
              "--source-pixel-size", "2")
    assert res.exit_code == 0 and "--source-pixel-size is now --default-pixel-size" in res.output
    assert float(read_manifest(tmp_path / "o.csv")["source_pixel_size_nm"][2]) == 2.0
    res = run("rescale", tmp_path / "m.csv", "-d", tmp_path / "r2", "-o", tmp_path / "o2.csv",
              "--source-pixel-size", "2", "--default-pixel-size", "2")
    assert res.exit_code == 2 and "old name of --default-pixel-size: give one" in res.output
    assert "--source-pixel-size" not in run("rescale", "--help").output
