from __future__ import annotations

import pytest

from covtool.datasets.common import DatasetError, crossing_groups
from covtool.datasets.covid_ct import ingest_covid_ct
from tests.datasets import fixtures


def test_labels_splits_groups_and_captions(tmp_path):
    res = ingest_covid_ct(fixtures.covid_ct(tmp_path / "ct"))
    df = res.items.set_index("id")
    assert len(df) == 7 and not res.removed
    assert list(res.items.columns[:5]) == ["id", "path", "label", "group", "split"]
    assert (df["label"] == "covid").sum() == 4 and (df["label"] == "noncovid").sum() == 3
    row = df.loc["covid_2020.01.24-p1-1"]
    assert (row["split"], row["patientid"], row["caption"], row["doi"], row["age"]) == \
        ("train", "Patient 1", "Fig 1a, GGO", "10.1101/2020.01.24", "45")
    assert row["group"] == "covid_Patient-1" and row["source"] == "10.1101/2020.01.24"
    assert df.loc["covid_2020.02.10-p3-2-0", "split"] == "test"
    # no metadata for the non-COVID images: each image is its own group
    assert df.loc["noncovid_1", "group"] == "noncovid_1" and df.loc["noncovid_2", "split"] == "test"
    assert df.groupby("group").size().max() == 2


def test_a_patient_in_two_splits_is_found(tmp_path):
    root = fixtures.covid_ct(tmp_path / "ct")
    # the official lists keep patients apart; here patient 7 crosses val/test on purpose
    assert crossing_groups(ingest_covid_ct(root).items) == ["covid_Patient-7"]
    (root / "Data-split" / "COVID" / "valCT_COVID.txt").write_text("2020.02.10-p3-2%0.png\n")
    (root / "Data-split" / "COVID" / "testCT_COVID.txt").write_text("2020.02.10-p3-1.png\n")
    assert crossing_groups(ingest_covid_ct(root).items) == ["covid_Patient-7"]
    (root / "Data-split" / "COVID" / "testCT_COVID.txt").write_text("")
    (root / "Data-split" / "COVID" / "valCT_COVID.txt").write_text("2020.02.10-p3-1.png\n2020.02.10-p3-2%0.png\n")
    assert crossing_groups(ingest_covid_ct(root).items) == []


def test_bad_files_stop_or_are_counted(tmp_path):
    root = fixtures.covid_ct(tmp_path / "ct")
    folder = root / "Images-processed" / "CT_NonCOVID"
    (folder / "notes.txt").write_text("x")
    (folder / "3.png").write_bytes(b"not a png")
    (folder / ".DS_Store").write_bytes(b"\0")
    with pytest.raises(DatasetError, match=r"3.png: unreadable image"):
        ingest_covid_ct(root)
    (root / "Data-split" / "NonCOVID" / "valCT_NonCOVID.txt").write_text("gone.png\n")
    res = ingest_covid_ct(root, skip_bad=True)
    assert dict(res.removed) == {"unknown file": 1, "unreadable image": 1, "listed but missing": 1}
    assert len(res.items) == 7
    assert any("3.png" in where for where, _ in res.problems)


def test_an_image_in_two_split_lists_names_file_and_line(tmp_path):
    root = fixtures.covid_ct(tmp_path / "ct")
    (root / "Data-split" / "NonCOVID" / "testCT_NonCOVID.txt").write_text("2.png\n0.jpg\n")
    with pytest.raises(DatasetError, match=r"trainCT_NonCOVID.txt:1: image in two splits: '0.jpg' is also in testCT_NonCOVID.txt:2"):
        ingest_covid_ct(root)


def test_excel_metainfo_is_read(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("openpyxl")
    root = fixtures.covid_ct(tmp_path / "ct")
    meta = pd.read_csv(root / "COVID-CT-MetaInfo.csv", dtype=str)
    (root / "COVID-CT-MetaInfo.csv").unlink()
    meta.to_excel(root / "Data-split" / "COVID-CT-MetaInfo.xlsx", index=False)
    df = ingest_covid_ct(root).items.set_index("id")
    assert df.loc["covid_2020.02.10-p3-1", "patientid"] == "Patient 7"


def test_missing_image_folders(tmp_path):
    with pytest.raises(DatasetError, match="no CT_COVID or CT_NonCOVID"):
        ingest_covid_ct(tmp_path)
