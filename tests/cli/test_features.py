from __future__ import annotations

import os
import subprocess

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from covtool.cli.app import app
from covtool.core.imageio import read_image, write_image
from covtool.core.manifest import read_manifest
from covtool.features.shape import shape_features
from covtool.synth.em import DEFAULT_CLASSES, write_em_dataset
from covtool.synth.scalebar import draw_scale_bar
from tests.conftest import covtool_cmd, covtool_env

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


FIXED = (["id", "area_nm2", "perimeter_nm", "major_axis_nm", "minor_axis_nm", "eccentricity"]
         + [f"hu_{i}" for i in range(1, 8)] + [f"hog_{i}" for i in range(1, 37)] + [f"glcm_{i}" for i in range(1, 17)])


@pytest.fixture(scope="module")
def em(tmp_path_factory):
    root = tmp_path_factory.mktemp("feat") / "em"
    truth = write_em_dataset(root, n_per_class=1, shape=(96, 96), pixel_sizes=(0.8, 1.6), particles=(1, 3),
                             masks=True, seed=2)
    return root, truth


def test_features_per_image_in_nm(em, tmp_path):
    root, truth = em
    out = tmp_path / "f.csv"
    res = run("features", root / "manifest.csv", "-o", out)
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out)
    assert set(FIXED) <= set(df.columns) and "ellipse_eccentricity" in df.columns
    assert df["id"].tolist() == truth["id"].tolist()
    for (_, row), (_, t) in zip(df.iterrows(), truth.iterrows()):
        mask = read_image(t["mask"]) > 0
        assert row["area_nm2"] == pytest.approx(mask.sum() * t["pixel_size_nm"] ** 2)
        direct = shape_features(mask, t["pixel_size_nm"])
        assert row["perimeter_nm"] == pytest.approx(direct["perimeter_nm"])
        assert row["eccentricity"] == pytest.approx(row["major_axis_nm"] / row["minor_axis_nm"])
    # existing output is kept without --force
    res = run("features", root / "manifest.csv", "-o", out)
    assert res.exit_code == 1 and "already exists" in res.output


def test_per_object_rows(em, tmp_path):
    root, truth = em
    out = tmp_path / "o.csv"
    assert run("features", root / "manifest.csv", "-o", out, "--per-object").exit_code == 0
    df = read_manifest(out)
    assert (df["id"] == df["image_id"] + "_" + df["object"]).all()
    whole = pd.read_csv(tmp_path / "o.csv")
    # objects' areas add up to the image's mask area
    for _, t in truth.iterrows():
        mask = read_image(t["mask"]) > 0
        area = whole.loc[whole["image_id"] == t["id"], "area_nm2"].sum()
        assert area == pytest.approx(mask.sum() * t["pixel_size_nm"] ** 2)


def test_scale_bar_measured(tmp_path):
    truth = write_em_dataset(tmp_path / "d", n_per_class=1, shape=(160, 240), masks=True, seed=5,
                             classes=DEFAULT_CLASSES[:2])
    for _, t in truth.iterrows():   # images with a 206 px bar, no pixel size column
        img, _ = draw_scale_bar(read_image(t["path"]), 206, 5, margin=8)
        write_image(t["path"], img, force=True)
    man = tmp_path / "m.csv"
    truth.drop(columns=["pixel_size_nm"]).to_csv(man, index=False)
    res = run("features", man, "-o", tmp_path / "f.csv")
    assert res.exit_code == 2 and f"{man}: --default-pixel-size: no scale: the manifest has no 'pixel_size_nm' " \
        "column (give this, or --scale-bar-nm)" in res.output
    res = run("features", man, "-o", tmp_path / "f.csv", "--scale-bar-nm", "100")
    assert res.exit_code == 0, res.output
    df = pd.read_csv(tmp_path / "f.csv")
    assert (df["scale_bar_px"] - 206).abs().max() <= 1
    assert df["pixel_size_nm"].to_numpy() == pytest.approx(100 / 206, rel=0.005)


def _one(tmp_path, image, mask, extra=""):
    write_image(tmp_path / "a.tif", image, force=True)
    write_image(tmp_path / "a_mask.png", mask, force=True)
    (tmp_path / "m.csv").write_text("id,path,mask,pixel_size_nm\na,a.tif,a_mask.png,1" + extra + "\n")
    return tmp_path / "m.csv"


def test_bad_inputs_name_the_file(tmp_path):
    img = np.full((40, 50), 1000, np.uint16)
    man = _one(tmp_path, img, np.full((40, 40), 255, np.uint8))
    res = run("features", man, "-o", tmp_path / "f.csv")
    assert res.exit_code == 1 and "a_mask.png: mask size 40x40 differs from the image's 50x40" in res.output
    man = _one(tmp_path, img, np.zeros((40, 50), np.uint8))
    res = run("features", man, "-o", tmp_path / "f.csv")
    assert res.exit_code == 1 and "a_mask.png: empty mask" in res.output
    assert not (tmp_path / "f.csv").exists()
    res = run("features", man, "-o", tmp_path / "f.csv", "--skip-bad")
    assert res.exit_code == 1 and "the one item failed (see the 'error' column of" in res.output
    df = read_manifest(tmp_path / "f.csv")   # written all the same, with its error row (issue 18)
    assert "empty mask" in df.at[2, "error"]
    man = _one(tmp_path, img, np.full((40, 50), 255, np.uint8), extra="\nb,a.tif,a_mask.png,")
    res = run("features", man, "-o", tmp_path / "g.csv")
    assert res.exit_code == 1 and "m.csv:3: no scale" in res.output
    res = run("features", man, "-o", tmp_path / "g.csv", "--scale-bar-nm", "100")
    assert res.exit_code == 1 and "a.tif: no scale bar found" in res.output


def test_parquet_without_pyarrow_is_a_clear_error(em, tmp_path):
    root, _ = em
    res = run("features", root / "manifest.csv", "-o", tmp_path / "f.parquet", "--format", "parquet")
    try:
        import pyarrow  # noqa: F401
        assert res.exit_code == 0 and pd.read_parquet(tmp_path / "f.parquet").shape[0] == 4
    except ImportError:
        assert res.exit_code == 2 and "--format: parquet needs pyarrow" in res.output


def test_deep_vgg16_no_weights_and_feature_maps(em, tmp_path):
    root, truth = em
    out = tmp_path / "d.csv"
    res = run("features", root / "manifest.csv", "-o", out, "--deep", "vgg16", "--weights", "none",
              "--input-size", "32", "--batch-size", "3", "--feature-maps", tmp_path / "maps",
              "--feature-channels", "4", "--shard", "0/2")
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out)
    deep = [c for c in df.columns if c.startswith("deep_")]
    assert len(deep) == 512 and deep[-1] == "deep_512"
    assert df["id"].tolist() == truth["id"].tolist()[0::2]
    assert np.isfinite(df[deep].to_numpy()).all()
    grid = read_image(tmp_path / "maps" / f"{df['id'][0]}.png")
    assert grid.shape == (2 * 33 - 1, 2 * 33 - 1)


def test_subprocess_pipe(em, tmp_path):
    root, truth = em
    cat = subprocess.run(["cat", str(root / "manifest.csv")], capture_output=True, check=True)
    res = subprocess.run(covtool_cmd("features", "-", "-o", "-", "--per-object"), input=cat.stdout,
                         capture_output=True, env=covtool_env(), cwd=root, timeout=120)
    assert res.returncode == 0, res.stderr.decode()
    lines = res.stdout.decode().splitlines()
    # the runner's column order: core columns, the stage's own, the carried ones
    assert lines[0].startswith("id,path,label,split,image_id,object,pixel_size_nm,area_nm2")
    assert lines[0].endswith(",annotation,particles,mask")
    assert len(lines) - 1 >= len(truth)
    assert b"tensorflow" not in res.stderr.lower()


def test_unknown_columns_are_carried_and_the_default_pixel_size_fills_empty_cells(tmp_path):
    img = np.full((40, 50), 1000, np.uint16)
    mask = np.zeros((40, 50), np.uint8)
    mask[10:20, 10:30] = 255
    man = _one(tmp_path, img, mask, extra="\nb,a.tif,a_mask.png,")
    man.write_text(man.read_text().replace("pixel_size_nm", "pixel_size_nm,note").replace(",1\n", ",1,first\n")
                   .replace(",\n", ",,second\n"))
    res = run("features", man, "-o", tmp_path / "f.csv", "--default-pixel-size", "2")
    assert res.exit_code == 0, res.output
    df = read_manifest(tmp_path / "f.csv")
    assert df["note"].tolist() == ["first", "second"] and df["mask"].tolist() == [str(tmp_path / "a_mask.png")] * 2
    assert df["pixel_size_nm"].tolist() == ["1", "2"]
    assert float(df.at[3, "area_nm2"]) == pytest.approx(4 * float(df.at[2, "area_nm2"]))


def test_option_combinations_are_refused_before_any_work(em, tmp_path):
    root, _ = em
    res = run("features", root / "manifest.csv", "-o", tmp_path / "f.csv", "--feature-maps", tmp_path / "m")
    assert res.exit_code == 2 and "--feature-maps: needs --deep" in res.output
    res = run("features", root / "manifest.csv", "-o", tmp_path / "f.csv", "--deep", "xception",
              "--weights", "none", "--input-size", "32")
    assert res.exit_code == 2 and "--input-size: 32 is too small for xception" in res.output
    assert not (tmp_path / "f.csv").exists() and not (tmp_path / "m").exists()
    # an existing output is named before TensorFlow starts (a stand-in that refuses to import)
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('tensorflow was imported')\n")
    env = covtool_env()
    env["PYTHONPATH"] = str(fake.parent) + os.pathsep + env["PYTHONPATH"]
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / f"{truth_id(root)}.png").write_bytes(b"old")
    r = subprocess.run(covtool_cmd("features", str(root / "manifest.csv"), "-o", str(tmp_path / "f.csv"),
                                   "--deep", "vgg16", "--weights", "none", "--feature-maps", str(tmp_path / "maps")),
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "already exists" in r.stderr and "tensorflow was imported" not in r.stderr
    assert (tmp_path / "maps" / f"{truth_id(root)}.png").read_bytes() == b"old"


def truth_id(root):
    return read_manifest(root / "manifest.csv")["id"].iloc[-1]


def test_parquet_rows_with_pyarrow(em, tmp_path):
    pytest.importorskip("pyarrow")
    root, truth = em
    res = run("features", root / "manifest.csv", "-o", tmp_path / "f.parquet", "--format", "parquet")
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(tmp_path / "f.parquet")
    assert df["id"].tolist() == truth["id"].tolist() and df["area_nm2"].dtype.kind == "f"
    assert df["label"].tolist() == truth["label"].tolist()  # carried, as in CSV
