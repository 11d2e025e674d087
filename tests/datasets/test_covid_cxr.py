from __future__ import annotations

import pytest

from covtool.core.errors import UsageError
from covtool.datasets.common import DatasetError
from covtool.datasets.covid_cxr import ingest_covid_cxr, map_label, parse_label_map
from tests.datasets import fixtures


def test_all_rows_group_is_patientid(tmp_path):
    res = ingest_covid_cxr(fixtures.covid_cxr(tmp_path / "cxr"))
    df = res.items.set_index("id")
    assert len(df) == 6 and not res.removed
    assert df.loc["a", "group"] == "2" and df.loc["c", "group"] == "5"
    assert df.loc["a", "label"] == "Pneumonia/Viral/COVID-19"
    assert df.loc["a", "clinical_notes"] == "cough, fever" and df.loc["a", "source"] == "10.1/x"
    assert df.loc["c", "source"] == "http://c"
    assert df.loc["b", "path"].endswith("b.jpg")


def test_filters_and_label_map_count_what_they_remove(tmp_path):
    root = fixtures.covid_cxr(tmp_path / "cxr")
    res = ingest_covid_cxr(root, modality="x-ray", views=["PA", "ap"], finding="covid|no finding",
                           label_map=["COVID-19=covid"])
    assert list(res.items["id"]) == ["a", "b"]
    assert set(res.items["label"]) == {"covid"}
    assert dict(res.removed) == {"modality is not x-ray": 1, "view not in --view": 1,
                                 "finding does not match --finding": 1, "finding not in --label-map": 1}


def test_label_map_first_match_wins():
    m = parse_label_map(["covid=covid", "pneumonia=pneumonia", "no finding=normal"])
    assert map_label("Pneumonia/Viral/COVID-19", m) == "covid"
    assert map_label("Pneumonia/Bacterial", m) == "pneumonia"
    assert map_label("Tuberculosis", m) is None
    assert map_label("Tuberculosis", []) == "Tuberculosis"
    with pytest.raises(UsageError):
        parse_label_map(["covid"])
    with pytest.raises(UsageError):
        parse_label_map(["(=x"])


def test_missing_unknown_and_damaged_files(tmp_path):
    root = fixtures.covid_cxr(tmp_path / "cxr")
    (root / "images" / "c.png").unlink()
    with pytest.raises(DatasetError, match=r"metadata.csv:4: missing image"):
        ingest_covid_cxr(root)
    (root / "images" / "zzz.png").write_bytes(b"junk")
    (root / "images" / "e.png").write_bytes(b"junk")
    res = ingest_covid_cxr(root, skip_bad=True)
    assert dict(res.removed) == {"missing image": 1, "unknown file": 1, "unreadable image": 1}
    assert sorted(res.items["id"]) == ["a", "b", "d", "f"]
    # a filtered row's file is neither missing nor unknown
    res = ingest_covid_cxr(root, skip_bad=True, modality="CT")
    assert dict(res.removed) == {"modality is not CT": 5, "unknown file": 1}


def test_metadata_without_required_columns(tmp_path):
    fixtures.write(tmp_path / "metadata.csv", "patientid,finding\n1,x\n")
    with pytest.raises(DatasetError, match="missing column filename"):
        ingest_covid_cxr(tmp_path)
