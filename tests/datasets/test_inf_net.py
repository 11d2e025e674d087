"""ingest inf-net: lesion-masked CT slices in Inf-Net's layout (generated, and the real copy)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from covtool.cli.app import app
from covtool.core.imageio import read_image, write_image
from covtool.core.manifest import read_manifest
from covtool.datasets.common import DatasetError
from covtool.datasets.inf_net import ingest_inf_net
from tests.conftest import shared_data

runner = CliRunner()


def layout(root, sizes=((40, 30), (36, 44), (30, 30))):
    """Inf-Net's release: TrainingSet/LungInfection-Train/Doctor-label/{Imgs/<n>.jpg, GT/<n>.png},
    a multi-class folder beside it (not binary masks: left out)."""
    pair = root / "TrainingSet" / "LungInfection-Train" / "Doctor-label"
    for sub in ("Imgs", "GT", "Edge"):
        (pair / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for n, (h, w) in zip((0, 2, 10), sizes):
        ok, data = cv2.imencode(".jpg", rng.integers(0, 255, (h, w), dtype=np.uint8))
        (pair / "Imgs" / f"{n}.jpg").write_bytes(data.tobytes())
        mask = np.zeros((h, w), np.uint8)
        mask[5:15, 5:15] = 255
        write_image(pair / "GT" / f"{n}.png", mask)
    multi = root / "TrainingSet" / "MultiClassInfection-Train"
    for sub in ("Imgs", "GT"):
        (multi / sub).mkdir(parents=True)
        write_image(multi / sub / "0.png", np.zeros((8, 8), np.uint8))
    return pair


def test_rows_pair_each_slice_with_its_mask(tmp_path):
    pair = layout(tmp_path / "inf")
    df = ingest_inf_net(tmp_path / "inf").items
    assert df["id"].tolist() == ["inf-net_0", "inf-net_2", "inf-net_10"]   # natural order
    assert list(df.columns) == ["id", "path", "label", "group", "split", "source", "mask"]
    assert set(df["label"]) == {"covid"} and set(df["group"]) == {"inf-net"}
    assert set(df["split"]) == {"train"}
    row = df.iloc[1]
    assert row["path"] == str(pair / "Imgs" / "2.jpg") and row["mask"] == str(pair / "GT" / "2.png")
    assert row["source"] == "TrainingSet/LungInfection-Train/Doctor-label/Imgs/2.jpg"
    other = ingest_inf_net(tmp_path / "inf", label="COVID", split="").items
    assert set(other["label"]) == {"COVID"} and set(other["split"]) == {""}


def test_mask_of_another_size_missing_mask_and_lone_mask(tmp_path):
    pair = layout(tmp_path / "inf")
    write_image(pair / "GT" / "2.png", np.zeros((10, 12), np.uint8), force=True)
    with pytest.raises(DatasetError) as err:
        ingest_inf_net(tmp_path / "inf")
    assert str(err.value) == (f"{pair / 'GT' / '2.png'}: mask size differs: mask is 12x10, "
                              f"its image {pair / 'Imgs' / '2.jpg'} is 44x36")
    (pair / "GT" / "10.png").unlink()
    write_image(pair / "GT" / "7.png", np.zeros((4, 4), np.uint8))
    res = ingest_inf_net(tmp_path / "inf", skip_bad=True)
    assert res.items["id"].tolist() == ["inf-net_0"]
    assert res.removed == {"mask size differs": 1, "no mask": 1, "mask without image": 1}
    assert not ingest_inf_net(tmp_path / "inf", skip_bad=True, verify=False).removed.get(
        "mask size differs")


def test_no_pair_folder_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no Imgs/GT folder pair"):
        ingest_inf_net(tmp_path / "empty")


def test_command_writes_a_manifest_that_merges_with_covid_ct(tmp_path):
    layout(tmp_path / "inf")
    out = tmp_path / "lesions.csv"
    res = runner.invoke(app, ["ingest", "inf-net", str(tmp_path / "inf"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    df = read_manifest(out)
    assert len(df) == 3 and df["mask"].map(lambda p: p.endswith(".png")).all()
    other = tmp_path / "ct.csv"
    other.write_text("id,path,label,group,split\nct1,a.png,noncovid,p1,train\n")
    merged = tmp_path / "combined.csv"
    res = runner.invoke(app, ["manifest", "merge", str(other), str(out), "-o", str(merged)])
    assert res.exit_code == 0, res.output
    m = read_manifest(merged)
    assert m["id"].tolist() == ["ct1", "inf-net_0", "inf-net_2", "inf-net_10"]
    assert m["mask"].fillna("").tolist()[0] == "" and m["mask"].fillna("").str.len().iloc[1:].gt(0).all()


@pytest.mark.realdata
def test_real_inf_net_doctor_labels():
    root = shared_data("ct-lesions", "inf-net")
    res = ingest_inf_net(root)
    df = res.items
    assert len(df) == 50 and not res.removed and df["id"].is_unique
    for _, row in df.head(10).iterrows():
        img, mask = read_image(row["path"]), read_image(row["mask"])
        assert img.shape[:2] == mask.shape[:2] and set(np.unique(mask)) <= {0, 255}
        assert 0 < (mask > 0).mean() < 0.5
