from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from covtool.core.errors import ManifestError, OutputExistsError
from covtool.core.manifest import (
    new_manifest,
    parse_bool,
    parse_manifest,
    read_manifest,
    to_csv_text,
    write_manifest,
    write_records,
)


def test_round_trip_keeps_unknown_columns_and_text(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('id,path,label,my_note,zip\na,img/a.tif,covid,"x, with comma",007\nb,img/b.tif,normal,,010\n')
    df = read_manifest(src)
    assert list(df.columns) == ["id", "path", "label", "my_note", "zip"]
    assert df["zip"].tolist() == ["007", "010"]  # text stays text
    out = tmp_path / "out.csv"
    write_manifest(df, out)
    assert out.read_text() == src.read_text()


def test_paths_resolve_against_manifest_folder_and_are_rebased(tmp_path):
    (tmp_path / "a" / "img").mkdir(parents=True)
    m = tmp_path / "a" / "m.csv"
    m.write_text("id,path\nx,img/x.tif\ny,/abs/y.tif\n")
    df = read_manifest(m)
    assert df.at[2, "path"] == str(tmp_path / "a" / "img" / "x.tif")
    assert df.at[3, "path"] == "/abs/y.tif"
    (tmp_path / "b").mkdir()
    out = tmp_path / "b" / "m2.csv"
    write_manifest(df, out)
    again = pd.read_csv(out, dtype=str)
    assert again["path"].tolist()[0] == "../a/img/x.tif"
    assert read_manifest(out).at[2, "path"] == str(tmp_path / "a" / "img" / "x.tif")


def test_stdin_and_stdout(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("id,path\nx,sub/x.png\n"))
    df = read_manifest("-")
    assert df.at[2, "path"] == str(tmp_path / "sub" / "x.png")
    write_manifest(df, "-")
    assert capsys.readouterr().out == "id,path\nx,sub/x.png\n"


def test_index_is_the_source_line_even_after_blank_and_multiline_rows():
    text = 'id,caption\na,"two\nlines"\n\nb,plain\n'
    df = parse_manifest(text, "m.csv")
    assert df.index.tolist() == [2, 5]
    assert df.at[2, "caption"] == "two\nlines"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "m.csv: empty manifest"),
        ("id,path\na,x\nb\n", "m.csv:3: 1 fields where the header has 2"),
        ("id,id\n", "m.csv:1: duplicate column id"),
        ("id,,x\n", "m.csv:1: empty column name at position 2"),
    ],
)
def test_parse_errors_name_file_and_line(text, message):
    with pytest.raises(ManifestError) as exc:
        parse_manifest(text, "m.csv")
    assert str(exc.value).startswith(message)


def test_validation_names_the_line(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("id,path,group\na,x.tif,p1\nb,y.tif,\na,z.tif,p2\n")
    with pytest.raises(ManifestError, match=r"m.csv:3: empty value in column 'group'"):
        read_manifest(m, required=["path", "group"])
    with pytest.raises(ManifestError, match=r"m.csv:4: duplicate id 'a'"):
        read_manifest(m)
    with pytest.raises(ManifestError, match=r"m.csv:1: missing column label"):
        read_manifest(m, required=["label"], unique_ids=False)


def test_missing_and_binary_manifests(tmp_path):
    with pytest.raises(ManifestError, match="no such manifest"):
        read_manifest(tmp_path / "nope.csv")
    b = tmp_path / "b.csv"
    b.write_bytes(b"id\x00\x01\n")
    with pytest.raises(ManifestError, match="binary data"):
        read_manifest(b)


def test_values_are_written_plainly():
    df = pd.DataFrame({"id": ["a", "b"], "selected": [True, False], "n": [3.0, float("nan")],
                       "x": [0.25, 1e-7]})
    text = to_csv_text(df, Path("/"))
    assert text.splitlines() == ["id,selected,n,x", "a,true,3,0.25", "b,false,,1e-07"]


@pytest.mark.parametrize("rows", [
    [{"id": "a", "path": "/abs/a.png", "page": 3, "panel": ""},
     {"id": "b", "path": "/abs/b.png", "page": 10, "panel": 2}],         # str and int
    [{"id": "a", "path": "/abs/a.png", "page": 7, "panel": True},
     {"id": "b", "path": "", "page": 1.5, "panel": None}],              # a column of int and float
    [{"id": "a", "page": 1}, {"id": "b", "path": "/abs/b.png"}],        # a missing key
])
def test_write_records_writes_what_write_manifest_writes_for_extract_rows(tmp_path, rows):
    cols = ["id", "path", "page", "panel"]
    write_manifest(new_manifest(rows, cols), tmp_path / "m.csv")
    write_records(rows, cols, tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_text() == (tmp_path / "m.csv").read_text()


def test_parse_bool():
    assert parse_bool("true") and parse_bool("1") and parse_bool("Yes") and parse_bool(True)
    assert not parse_bool("false") and not parse_bool("") and not parse_bool("0")
    with pytest.raises(ValueError):
        parse_bool("maybe")


def test_write_refuses_to_overwrite_and_is_atomic(tmp_path):
    out = tmp_path / "o.csv"
    out.write_text("keep me\n")
    df = pd.DataFrame({"id": ["a"]})
    with pytest.raises(OutputExistsError):
        write_manifest(df, out)
    assert out.read_text() == "keep me\n"
    write_manifest(df, out, force=True)
    assert out.read_text() == "id\na\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv"]  # no temporary left


def test_write_records_writes_what_write_manifest_writes(tmp_path):
    """select's pandas-free writer: the same text as the DataFrame path, for every kind of
    value a stage puts in a row (ints, floats, integer-valued floats, NaN, None, bools, paths)."""
    from covtool.core.manifest import new_manifest, write_manifest, write_records

    rows = [{"id": "a", "path": str(tmp_path / "x" / "a.tif"), "slice": -346.1, "dark_pixels": 12,
             "threshold": 11750.0, "selected": True, "error": "", "n": None},
            {"id": "b", "path": str(tmp_path / "x" / "b.tif"), "slice": 2, "dark_pixels": None,
             "threshold": 1 / 3, "selected": False, "error": "bad: x", "n": float("nan")},
            {"id": "c", "path": "", "slice": 1e-7, "dark_pixels": 0, "threshold": None,
             "selected": False, "error": 'quote " and, comma'}]
    cols = ["id", "path", "slice", "dark_pixels", "threshold", "selected", "error", "n"]
    write_records(rows, cols, tmp_path / "plain.csv")
    write_manifest(new_manifest(rows, cols), tmp_path / "frame.csv")
    assert (tmp_path / "plain.csv").read_text() == (tmp_path / "frame.csv").read_text()
    text = (tmp_path / "plain.csv").read_text().splitlines()
    assert text[1] == "a,x/a.tif,-346.1,12,11750,true,,"
    assert text[2] == "b,x/b.tif,2,,0.3333333333333333,false,bad: x,"
