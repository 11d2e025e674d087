from __future__ import annotations

import pandas as pd
import pytest

from covtool.core.errors import ParameterError
from covtool.datasets.common import DatasetError, crossing_groups
from covtool.datasets.covid_ctset import ingest_covid_ctset, parse_age, slice_key
from tests.conftest import shared_data
from tests.datasets import fixtures


def test_both_parts_found_is_an_error_naming_both(tmp_path):
    root = fixtures.covid_ctset(tmp_path / "set")
    with pytest.raises(ParameterError, match=r"part: both parts of the release are here: 8 raw 16-bit slices "
                       r"\(e\.g\. COVID-CTset/137covid/patient1/SR_2/IM00001\.tif\) and 3 training "
                       r"slices .*choose raw or training"):
        ingest_covid_ctset(root)


def test_raw_part_with_lists_and_details(tmp_path):
    res = ingest_covid_ctset(fixtures.covid_ctset(tmp_path / "set"), part="raw")
    df = res.items.set_index("id")
    assert len(df) == 8
    assert dict(res.removed) == {"in the training part (--part raw)": 3,
                                 "listed, not in the raw part": 3}
    r = df.loc["137covid_patient1_SR_2_IM00010"]
    assert (r["label"], r["group"], r["series"], r["split"], r["fold"], r["value_scale"]) == \
        ("covid", "patient1", "137covid_patient1_SR_2", "train", 1, "hu+1024")
    assert (r["sex"], r["age"], r["thickness_mm"], r["source"]) == ("F", "53", "4", "137covid")
    assert df.loc["137covid_patient1_SR_3_IM00001", "thickness_mm"] == "6"
    assert df.loc["137covid_patient1_SR_3_IM00001", "split"] == ""  # raw slice not in a list
    assert df.loc["normal1_patient168_SR_2_IM00003", "label"] == "normal"
    assert set(df["value_scale"]) == {"hu+1024"} and not res.warnings
    assert df["series"].nunique() == 3 and crossing_groups(res.items) == []


def test_training_part_is_on_the_per_image_max_scale(tmp_path):
    res = ingest_covid_ctset(fixtures.covid_ctset(tmp_path / "set"), part="training")
    df = res.items.set_index("id")
    assert sorted(df.index) == ["157covid_patient3_SR_4_IM00020", "157covid_patient3_SR_4_IM00021",
                                "normal2_patient200_SR_2_IM00005"]
    assert set(df["value_scale"]) == {"per-image-max"} and not res.warnings
    assert df.loc["normal2_patient200_SR_2_IM00005", "split"] == "val"
    assert df.loc["157covid_patient3_SR_4_IM00020", "thickness_mm"] == "5"
    assert res.removed["in the raw part (--part training)"] == 8


def test_one_part_alone_needs_no_choice_and_dtype_decides_the_scale(tmp_path):
    root = fixtures.covid_ctset(tmp_path / "set")
    import shutil
    shutil.rmtree(root / "Training&Validation" / "train1")
    shutil.rmtree(root / "Training&Validation" / "validation1")
    res = ingest_covid_ctset(root)
    assert len(res.items) == 8 and set(res.items["value_scale"]) == {"hu+1024"}
    # a raw folder holding float slices: the dtype wins, and the user is told
    shutil.rmtree(root / "COVID-CTset")
    fixtures.tif_unit(root / "COVID-CTset" / "137covid" / "patient1" / "SR_2" / "IM00010.tif")
    res = ingest_covid_ctset(root)
    assert list(res.items["value_scale"]) == ["per-image-max"]
    assert len(res.warnings) == 1 and "should hold hu+1024 values but this slice is float32" in res.warnings[0]


def test_listed_only_and_listed_but_absent(tmp_path):
    root = fixtures.covid_ctset(tmp_path / "set")
    (root / "Training&Validation" / "train1" / "157covid_patient3_SR_4_IM00021.tif").unlink()
    res = ingest_covid_ctset(root, listed_only=True, part="training")
    assert sorted(res.items["id"]) == ["157covid_patient3_SR_4_IM00020", "normal2_patient200_SR_2_IM00005"]
    assert dict(res.removed) == {"in the raw part (--part training)": 8,
                                 "listed, not in the training part": 2}
    # the expert-selected slices taken from the raw part: the scale patient-diagnose sees
    res = ingest_covid_ctset(root, listed_only=True, part="raw")
    assert list(res.items["id"]) == ["137covid_patient1_SR_2_IM00010"]
    assert res.removed["not in a fold list"] == 7 and list(res.items["value_scale"]) == ["hu+1024"]


def test_fold_choice_and_leak_between_splits(tmp_path):
    root = fixtures.covid_ctset(tmp_path / "set")
    with pytest.raises(DatasetError, match="no fold lists for fold 2"):
        ingest_covid_ctset(root, fold=2, part="raw")
    fixtures.write(root / "Training&Validation" / "CSV" / "validation1.csv",
                   "filename,class\nnormal2_patient200_SR_2_IM00005.tif,normal\n"
                   "157covid_patient3_SR_4_IM00021.tif,covid\n")
    with pytest.raises(DatasetError, match="slice in two splits"):
        ingest_covid_ctset(root, part="raw")


def test_unknown_duplicate_and_conflicting_files(tmp_path):
    root = fixtures.covid_ctset(tmp_path / "set")
    (root / "readme.txt").write_text("hello")
    with pytest.raises(DatasetError, match="readme.txt: unknown file"):
        ingest_covid_ctset(root)
    fixtures.tif_unit(root / "copy" / "157covid_patient3_SR_4_IM00020.tif")
    (root / "Training&Validation" / "train1" / "157covid_patient3_SR_4_IM00021.tif").write_bytes(b"II*\0junk")
    fixtures.tif_unit(root / "x" / "normal9_patient999_SR_2_IM00001.tif")
    res = ingest_covid_ctset(root, skip_bad=True, part="training")
    assert dict(res.removed) == {"unknown file": 1, "duplicate slice": 1, "unreadable image": 1,
                                 "no label": 1, "in the raw part (--part training)": 8,
                                 "listed, not in the training part": 1}
    assert sorted(res.items["id"]) == ["157covid_patient3_SR_4_IM00020", "normal2_patient200_SR_2_IM00005"]


def test_label_conflict_with_patient_details(tmp_path):
    root = fixtures.covid_ctset(tmp_path / "set", detail_rows=[
        "patient1,F,053Y,20200407,Negative,4,6,1.5", "patient3,M,066Y,20200418,Positive,5,5,5",
        "patient168,F,052Y,20200314,Negative,6,1.5,1.5", "patient200,M,031Y,20200320,Negative,6,N/A,8"])
    with pytest.raises(DatasetError, match="listed as 'covid' but patient1 is 'Negative'"):
        ingest_covid_ctset(root, part="raw")


def test_name_parsing():
    from pathlib import Path
    root = Path("/d")
    assert slice_key(Path("/d/x/cdnormal4_patient146_SR_2_IM00006.tif"), root) == \
        ("cdnormal4", "patient146", "SR_2", "IM00006")
    assert slice_key(Path("/d/normal1/patient168/SR_3/IM00012.tif"), root) == \
        ("normal1", "patient168", "SR_3", "IM00012")
    assert slice_key(Path("/d/patient168/IM00012.tif"), root) is None
    assert parse_age("053Y") == "53" and parse_age("") == ""


def test_real_tables_from_the_release(tmp_path):
    """Real rows of all.csv and Patient_details.csv: labels agree, patients are the groups."""
    src = shared_data("covid-ctset")
    details = pd.read_csv(src / "Patient_details.csv", dtype=str)
    allcsv = pd.read_csv(src / "all.csv", dtype=str)
    picked = pd.concat([allcsv[allcsv["class"] == "covid"].head(3), allcsv[allcsv["class"] == "normal"].head(3),
                        allcsv[allcsv["filename"].str.startswith("normal5_patient168_")].head(2)])
    root = tmp_path / "real"
    for name in picked["filename"]:
        fixtures.tif_unit(root / "Training&Validation" / name)
    picked.to_csv(root / "all.csv", index=False)
    res = ingest_covid_ctset(root, details=src / "Patient_details.csv")
    df = res.items.set_index("id")
    assert len(df) == len(picked) and not res.removed
    for name, cls in zip(picked["filename"], picked["class"]):
        row = df.loc[name[:-4]]
        patient = name.split("_")[1]
        truth = details[details["Patient ID"] == patient].iloc[0]
        assert row["label"] == cls and row["group"] == patient
        assert row["sex"] == truth["SEX"]
        assert {"Positive": "covid", "Negative": "normal"}[truth["COVID-19 Infection"]] == cls


def test_tables_without_any_slice_is_an_error_not_an_empty_manifest(tmp_path):
    root = fixtures.covid_ctset(tmp_path / "set")
    import shutil
    shutil.rmtree(root / "COVID-CTset")
    shutil.rmtree(root / "Training&Validation" / "train1")
    shutil.rmtree(root / "Training&Validation" / "validation1")
    with pytest.raises(DatasetError, match="set: no COVID-CTset slice found"):
        ingest_covid_ctset(root)
