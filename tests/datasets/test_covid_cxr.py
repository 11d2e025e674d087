from __future__ import annotations

import pytest
from typer.testing import CliRunner

from covtool.cli.app import app
from covtool.core.errors import ManifestError, UsageError
from covtool.datasets.common import PROBLEMS_LISTED, DatasetError, problem_lines, read_table
from covtool.datasets.covid_cxr import PatientUnion, ingest_covid_cxr, map_label, parse_label_map
from tests.conftest import shared_data
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


# --- the releases as published (issue 16) ---------------------------------------------------

def test_june_2020_table_trailing_comma_and_an_image_under_two_patients(tmp_path):
    # regression: 'metadata.csv:1: empty column name at position 29', then
    # "duplicate file name: 'p1.jpg' is also on line 2"
    root = fixtures.covid_cxr_june2020(tmp_path / "cxr")
    res = ingest_covid_cxr(root, skip_bad=True)
    df = res.items.set_index("id")
    assert sorted(df.index) == ["n1", "p1", "p2", "p3", "q1"]
    assert df.loc["p1", "patientid"] == "285;339" and df.loc["q1", "patientid"] == "287;340"
    # the patients an image joins are one group, with every item of theirs: no leak
    assert {i: df.loc[i, "group"] for i in df.index} == {
        "p1": "285+339", "p2": "285+339", "p3": "285+339", "q1": "287+340", "n1": "7"}
    assert df.loc["p2", "patientid"] == "285" and df.loc["p3", "patientid"] == "339"
    # the first listing's other columns are kept
    assert df.loc["p1", "clinical_notes"] == "first, listing"
    assert df.loc["n1", "extra_notes"] == "Credit to A., B." and df.loc["p1", "extra_notes"] == ""
    assert "" not in res.items.columns and not any(c.startswith("unnamed") for c in res.items.columns)
    assert dict(res.removed) == {"missing image": 1, "volume (.nii.gz CT), not a 2-D image": 1}
    assert res.problems == [(f"{root / 'metadata.csv'}:10", "missing image: 'gone.jpg' is not in images/")]
    (warning,) = res.warnings
    assert "2 image(s) listed more than once (lines 2/5, 4/7)" in warning
    assert "differ in clinical_notes" in warning and "285+339, 287+340" in warning


def test_a_missing_image_without_skip_bad_is_one_line(tmp_path):
    root = fixtures.covid_cxr_june2020(tmp_path / "cxr")
    with pytest.raises(DatasetError) as exc:
        ingest_covid_cxr(root)
    assert str(exc.value) == f"{root / 'metadata.csv'}:10: missing image: 'gone.jpg' is not in images/"


def test_patients_joined_through_a_chain_of_images_are_one_group(tmp_path):
    root = fixtures.covid_cxr_june2020(tmp_path / "cxr")
    meta = root / "metadata.csv"
    lines = meta.read_text().splitlines()
    # q1.jpg is now also listed under 339: 285, 339, 287 and 340 are one person's group
    lines.append(lines[3].replace("287,", "339,", 1))
    meta.write_text("\n".join(lines) + "\n")
    df = ingest_covid_cxr(root, skip_bad=True).items.set_index("id")
    assert set(df.loc[["p1", "p2", "p3", "q1"], "group"]) == {"285+287+339+340"}
    assert df.loc["q1", "patientid"] == "287;340;339"
    u = PatientUnion()
    u.union(["b", "c"])
    u.union(["a", "b"])
    u.union(["d"])
    assert u.groups() == {"a": "a+b+c", "b": "a+b+c", "c": "a+b+c", "d": "d"}


def test_folder_column_is_respected_and_volumes_are_counted(tmp_path):
    root = fixtures.covid_cxr_june2020(tmp_path / "cxr")
    fixtures.write(root / "volumes" / "v1.nii.gz", "not opened: removed by name")
    meta = root / "metadata.csv"
    meta.write_text(meta.read_text().replace(",images,n1.png,", ",scans,n1.png,"))
    fixtures.png(root / "scans" / "n1.png")
    res = ingest_covid_cxr(root, skip_bad=True)
    df = res.items.set_index("id")
    assert df.loc["n1", "path"] == str(root / "scans" / "n1.png") and df.loc["n1", "folder"] == "scans"
    # images/n1.png is named by no row now
    assert dict(res.removed) == {"missing image": 1, "volume (.nii.gz CT), not a 2-D image": 1,
                                 "unknown file": 1}
    assert (str(root / "images" / "n1.png"), "unknown file: not named in metadata.csv") in res.problems


def test_later_schema_30_columns_and_hierarchical_findings(tmp_path):
    root = fixtures.covid_cxr_later(tmp_path / "cxr")
    res = ingest_covid_cxr(root)
    df = res.items.set_index("id")
    assert len(df) == 6 and not res.removed and not res.warnings
    assert df.loc["a", "rt_pcr_positive"] == "Y" and df.loc["e", "rt_pcr_positive"] == "N"
    assert df.loc["a", "label"] == "Pneumonia/Viral/COVID-19"
    assert list(df.columns[:4]) == ["path", "label", "group", "source"]
    # a pattern is searched in the whole finding path: first match wins
    res = ingest_covid_cxr(root, label_map=["COVID-19=covid", "No Finding=normal", "Viral=viral",
                                            "Bacterial=bacterial"])
    assert dict(zip(res.items["id"], res.items["label"])) == {
        "a": "covid", "b": "covid", "c": "viral", "d": "bacterial", "e": "normal"}
    assert dict(res.removed) == {"finding not in --label-map": 1}
    res = ingest_covid_cxr(root, finding="COVID-19")
    assert list(res.items["id"]) == ["a", "b"]
    assert dict(res.removed) == {"finding does not match --finding": 4}
    res = ingest_covid_cxr(root, finding="^Pneumonia/Viral/")
    assert list(res.items["id"]) == ["a", "b", "c"]


def test_one_label_map_on_both_schemas(tmp_path):
    mapping = ["COVID-19=covid", "No Finding=normal"]
    june = ingest_covid_cxr(fixtures.covid_cxr_june2020(tmp_path / "june"), skip_bad=True,
                            label_map=mapping, finding="covid|no finding")
    later = ingest_covid_cxr(fixtures.covid_cxr_later(tmp_path / "later"), label_map=mapping,
                             finding="covid|no finding")
    assert dict(zip(june.items["id"], june.items["label"])) == {
        "p1": "covid", "p2": "covid", "p3": "covid", "n1": "normal"}
    assert dict(zip(later.items["id"], later.items["label"])) == {"a": "covid", "b": "covid", "e": "normal"}


def test_unnamed_columns_of_a_table(tmp_path):
    t = fixtures.write(tmp_path / "t.csv", "a,,b,\n1,,2,\n3,,4,\n")
    assert list(read_table(t).columns) == ["a", "b"]
    t = fixtures.write(tmp_path / "t.csv", "a,,b\n1,,2\n3,x,4\n")
    with pytest.raises(ManifestError, match=r"t.csv:3: column 2 has no name but holds data \('x'\)"):
        read_table(t)
    t = fixtures.write(tmp_path / "t.csv", "a,b,\n1,2,\n3,4,note\n")
    with pytest.raises(ManifestError, match=r"t.csv:3: column 3 has no name"):
        read_table(t)
    df = read_table(t, last_column="extra")
    assert list(df.columns) == ["a", "b", "extra"] and list(df["extra"]) == ["", "note"]
    # pandas' own name for a blank header cell (a table read and saved again) is no name either
    t = fixtures.write(tmp_path / "t.csv", "a,Unnamed: 1\n1,\n")
    assert list(read_table(t).columns) == ["a"]


def test_many_missing_images_are_listed_briefly(tmp_path):
    root = fixtures.covid_cxr_later(tmp_path / "cxr")
    meta = root / "metadata.csv"
    lines = meta.read_text().splitlines()
    lines += [lines[1].replace("a.jpg", f"gone{i}.jpg") for i in range(12)]
    meta.write_text("\n".join(lines) + "\n")
    res = ingest_covid_cxr(root, skip_bad=True)
    assert res.removed["missing image"] == 12 and len(res.problems) == 12
    out = problem_lines(res)
    assert len(out) == PROBLEMS_LISTED + 1
    assert out[0] == f"skipped {meta}:8: missing image: 'gone0.jpg' is not in images/"
    assert out[-1] == "... and 7 more skipped: missing image (12 in all; --debug lists every one)"
    assert len(problem_lines(res, None)) == 12
    r = CliRunner().invoke(app, ["ingest", "covid-cxr", str(root), "-o", str(tmp_path / "m.csv"),
                                 "--skip-bad"])
    assert r.exit_code == 0, r.output
    assert r.output.count("skipped") == PROBLEMS_LISTED + 1 and "7 more skipped" in r.output
    assert "removed 12: missing image" in r.output and "6 items, 12 removed" in r.output


@pytest.mark.realdata
def test_real_collection_june_2020():
    root = shared_data("covid-cxr")
    with pytest.raises(DatasetError, match=r"metadata.csv:13: missing image: 'SARS-10.1148rg"):
        ingest_covid_cxr(root, verify=False)
    res = ingest_covid_cxr(root, skip_bad=True)
    df = res.items.set_index("id")
    assert len(df) == 59 and df["group"].nunique() == 37
    # 673 rows = 668 images (5 listed twice); 21 of them CT volumes, 59 of the rest here
    assert dict(res.removed) == {"missing image": 588, "volume (.nii.gz CT), not a 2-D image": 21}
    assert len(res.items.columns) == 34 and "extra_notes" in df.columns and "needed_supplemental_o2" in df.columns
    assert (df.loc["000002-29", "patientid"], df.loc["000002-29", "group"]) == ("287;340", "287+340")
    assert (df["group"] == "287+340").sum() == (df["patientid"].isin(["287", "340", "287;340"])).sum()
    (warning,) = res.warnings
    assert "5 image(s) listed more than once (lines 553/655, 554/656, 555/657, 556/658, 557/659)" in warning
    assert "285+339, 287+340" in warning
    assert (df["modality"] == "CT").sum() == 6
    covid = ingest_covid_cxr(root, skip_bad=True, label_map=["COVID-19=covid", "No Finding=normal"])
    assert covid.items["label"].value_counts().to_dict() == {"covid": 21, "normal": 3}
