"""explain on an unreadable image: one line naming it and nothing left, or with --skip-bad its
error row while the rest of its batch is explained."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from covtool.cli.app import app
from covtool.core.manifest import read_manifest
from tests.training.toy import write_truncated_toy, write_untrained_run

BAD = "img4.tif"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    manifest = write_truncated_toy(tmp_path_factory.mktemp("explain"), BAD, n=6)
    return manifest, write_untrained_run(manifest, manifest.parent / "run")


def explain(*args: str):
    return CliRunner().invoke(app, ["explain", *args])


def test_an_unreadable_image_is_one_line_and_nothing_is_left(data, tmp_path):
    manifest, run = data
    out = tmp_path / "out"
    r = explain(str(run), str(manifest), "-d", str(out), "--batch-size", "4")
    assert r.exit_code == 1, r.output
    bad = manifest.parent / BAD
    assert r.output.strip().splitlines() == [
        f"covtool: error: {bad}: could not read the image: unreadable TIFF (failed to read 2048 "
        f"bytes, got 896)"]
    assert not out.exists() or not any(out.iterdir())  # the runner took back the batch's overlays


def test_skip_bad_gives_the_image_an_error_row_and_explains_the_rest(data, tmp_path):
    manifest, run = data
    out = tmp_path / "out"
    r = explain(str(run), str(manifest), "-d", str(out), "--batch-size", "4", "--skip-bad", "--npy")
    assert r.exit_code == 0, r.output
    rows = read_manifest(out / "explain.csv").fillna("").set_index("id")
    assert list(rows.index) == [f"img{i}" for i in range(6)]
    bad = rows.loc["img4"]
    assert bad["error"] == f"{manifest.parent / BAD}: could not read the image: unreadable TIFF " \
                           f"(failed to read 2048 bytes, got 896)"
    assert bad["pred"] == "" and not (out / "img4.png").exists()
    good = rows.drop(index="img4")
    assert (good["error"] == "").all() and set(good["pred"]) <= {"covid", "normal"}
    for iid, row in good.iterrows():  # img0-3 one batch, img5 with the bad one's batch-mate gone
        assert Path(row["path"]) == out / f"{iid}.png" and Path(row["path"]).is_file()
        assert Path(row["heatmap"]).is_file() and 0.0 <= float(row["prob"]) <= 1.0
