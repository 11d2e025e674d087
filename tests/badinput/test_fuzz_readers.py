"""The text readers on arbitrary input (hypothesis): a value, or one CovtoolError -- never another
exception, never a hang (issue 18). Each reader gets both free text and text shaped like its
format with damage (wrong field counts, quotes, separators, NULs, numbers that are not)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from covtool.core.errors import CovtoolError
from covtool.core.manifest import parse_manifest, read_table
from covtool.em.annotations import (
    parse_annotation_csv,
    parse_annotation_text,
    parse_particle_positions,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

cells = st.one_of(st.text(alphabet=st.sampled_from(list('ab1.5-;,"\n\r\t x\x00é')), max_size=12),
                  st.sampled_from(["nan", "1e309", "", '"', 'a"b']))
lines = st.lists(st.lists(cells, max_size=5).map(",".join), max_size=8).map("\n".join)
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
                    st.sampled_from(["", "x", "1,5", "--1", "1e", "nan"]))
point_lines = st.lists(st.lists(numbers, min_size=0, max_size=4).map(" ".join), max_size=10).map("\n".join)
free = st.text(max_size=200)


def one_way(fn, *args):
    """``fn(*args)`` either returns or raises a CovtoolError (whose message is one line)."""
    try:
        fn(*args)
    except CovtoolError as exc:
        assert "\n" not in str(exc).strip(), str(exc)


@FAST
@given(st.one_of(free, lines))
def test_manifest_text(text):
    one_way(parse_manifest, text, "m.csv")


@FAST
@given(st.one_of(free, lines))
def test_manifest_file_with_required_columns(tmp_path_factory, text):
    p = Path(tmp_path_factory.mktemp("m")) / "m.csv"
    try:
        p.write_text(text, encoding="utf-8")
    except UnicodeEncodeError:   # lone surrogates: no file can hold them as UTF-8
        return
    one_way(read_table, p, ["path"])


@FAST
@given(st.one_of(free, point_lines))
def test_point_annotations(text):
    one_way(parse_annotation_text, text, "a.txt")


@FAST
@given(st.one_of(free, lines, st.lists(st.lists(numbers, max_size=4).map(",".join), max_size=8)
                 .map(lambda rows: "\n".join(["object,vertex,x,y", *rows]))))
def test_csv_annotations(text):
    one_way(parse_annotation_csv, text, "a.csv")


particle_files = st.lists(st.one_of(st.just("particleposition"), st.lists(numbers, max_size=3).map(";".join)),
                          max_size=12).map(lambda rows: "\n".join(["h1", "h2", "h3", *rows]))


@FAST
@given(st.one_of(free, particle_files))
def test_tem_particle_position_files(text):
    one_way(parse_particle_positions, text, "p.txt")


@FAST
@given(st.binary(max_size=300))
def test_tem_tag_files(tmp_path_factory, data):
    from covtool.datasets.tem import read_tags

    p = Path(tmp_path_factory.mktemp("t")) / "img.tif_tags.txt"
    p.write_bytes(data)
    try:
        tags = read_tags(p)
    except CovtoolError as exc:
        assert "\n" not in str(exc).strip()
        return
    for key in list(tags.rows)[:3]:
        one_way(tags.written, key)


@FAST
@given(st.one_of(free, lines))
def test_dataset_tables(tmp_path_factory, text):
    from covtool.datasets.common import read_table as read_dataset_table

    p = Path(tmp_path_factory.mktemp("d")) / "meta.csv"
    try:
        p.write_text(text, encoding="utf-8")
    except UnicodeEncodeError:
        return
    one_way(read_dataset_table, p)
