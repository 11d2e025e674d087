from __future__ import annotations

import numpy as np
import pytest

from covtool.core.errors import ManifestError
from covtool.datasets.common import DatasetError, crossing_groups
from covtool.datasets.covid_ct import ingest_covid_ct
from tests.conftest import shared_data
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


# --- the release as published (issue 16) ----------------------------------------------------

def test_noncovid_table_with_an_unnamed_index_gives_patient_groups(tmp_path):
    # regression: 'NonCOVID-CT-MetaInfo.csv:1: empty column name at position 1'
    root = fixtures.covid_ct(tmp_path / "ct")
    fixtures.covid_ct_noncovid_table(root, {"0.jpg": "crawled_patient_0", "1.jpg": "crawled_patient_0",
                                            "2.png": "medpix_patient_3"})
    res = ingest_covid_ct(root)
    df = res.items.set_index("id")
    assert not res.removed and not res.warnings
    assert df.loc["noncovid_0", "group"] == df.loc["noncovid_1", "group"] == "noncovid_crawled_patient_0"
    assert (df.loc["noncovid_2", "group"], df.loc["noncovid_2", "patientid"]) == \
        ("noncovid_medpix_patient_3", "medpix_patient_3")
    # the index is no column; the image-name column is not repeated
    assert not {"unnamed_0", "image_name", "patient_id"} & set(res.items.columns)
    # the official lists are kept as they are: 0.jpg/1.jpg share train, 2.png is test
    assert (df.loc["noncovid_0", "split"], df.loc["noncovid_2", "split"]) == ("train", "test")
    assert crossing_groups(res.items) == ["covid_Patient-7"]


def test_a_patient_across_the_official_lists_is_reported_not_moved(tmp_path):
    root = fixtures.covid_ct(tmp_path / "ct")
    fixtures.covid_ct_noncovid_table(root, {"0.jpg": "p0", "1.jpg": "p1", "2.png": "p0"})
    res = ingest_covid_ct(root)
    df = res.items.set_index("id")
    assert crossing_groups(res.items) == ["covid_Patient-7", "noncovid_p0"]
    assert (df.loc["noncovid_0", "split"], df.loc["noncovid_2", "split"]) == ("train", "test")


def test_an_image_without_a_table_row_is_warned_about(tmp_path):
    root = fixtures.covid_ct(tmp_path / "ct")
    fixtures.covid_ct_noncovid_table(root, {"0.jpg": "p0", "1.jpg": "p0"})
    res = ingest_covid_ct(root)
    assert res.warnings == ["1 CT_NonCOVID image(s) have no row in the class's MetaInfo table: "
                            "no patient id, each is its own group"]
    assert res.items.set_index("id").loc["noncovid_2", "group"] == "noncovid_2"


def test_an_unnamed_column_that_is_no_index_is_an_error(tmp_path):
    root = fixtures.covid_ct(tmp_path / "ct")
    fixtures.write(root / "NonCOVID-CT-MetaInfo.csv", ",image name,patient id\n0,0.jpg,p0\n7,1.jpg,p0\n")
    with pytest.raises(ManifestError, match=r"NonCOVID-CT-MetaInfo.csv:2: column 1 has no name but holds data"):
        ingest_covid_ct(root)


def test_a_png_holding_jpeg_data_is_not_refused_by_its_name(tmp_path):
    cv2 = pytest.importorskip("cv2")
    root = fixtures.covid_ct(tmp_path / "ct")
    ok, data = cv2.imencode(".jpg", np.full((16, 16), 90, np.uint8))
    (root / "Images-processed" / "CT_NonCOVID" / "2.png").write_bytes(data.tobytes())
    for verify in (False, True):
        res = ingest_covid_ct(root, verify=verify)
        assert len(res.items) == 7 and not res.removed
        assert res.items.set_index("id").loc["noncovid_2", "split"] == "test"


@pytest.mark.realdata
def test_real_release_counts_splits_and_groups():
    res = ingest_covid_ct(shared_data("covid-ct"))
    df = res.items
    assert not res.removed and not res.warnings and not res.problems
    counts = df.groupby(["label", "split"]).size().to_dict()
    assert counts == {("covid", "train"): 191, ("covid", "val"): 60, ("covid", "test"): 98,
                      ("noncovid", "train"): 234, ("noncovid", "val"): 58, ("noncovid", "test"): 105}
    assert df.groupby("label")["group"].nunique().to_dict() == {"covid": 213, "noncovid": 171}
    assert (df["patientid"] != "").all()
    # the authors' lists keep every patient in one split
    assert crossing_groups(df) == []
    assert df.groupby(["label", "split"])["group"].nunique().to_dict() == {
        ("covid", "train"): 128, ("covid", "val"): 32, ("covid", "test"): 53,
        ("noncovid", "train"): 105, ("noncovid", "val"): 24, ("noncovid", "test"): 42}
