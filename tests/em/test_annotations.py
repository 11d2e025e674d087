from __future__ import annotations

import numpy as np
import pytest

from covtool.em.annotations import (
    AnnotationError,
    Particle,
    check_inside,
    clamp_particles,
    format_annotation_text,
    parse_annotation_text,
    read_annotations,
    scale_particles,
)


def test_text_form_points_lines_comments(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("# image 1\n10 20\n\n1,2, 3,4  5 6   # a centre line\n  7.5\t8.25\n")
    parts = read_annotations(f)
    assert [len(p.vertices) for p in parts] == [1, 3, 1]
    np.testing.assert_array_equal(parts[1].vertices, [[1, 2], [3, 4], [5, 6]])
    assert parts[0].is_point and not parts[1].is_point
    assert parts[1].lines == (4, 4, 4) and parts[2].lines == (5,)


def test_csv_form_orders_vertices(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("object,vertex,x,y,note\n1,1,30,40,\n0,0,5,6,\n1,0,10,20,x\n1,2,50,60,\n")
    parts = read_annotations(f)
    assert len(parts) == 2
    np.testing.assert_array_equal(parts[0].vertices, [[5, 6]])
    np.testing.assert_array_equal(parts[1].vertices, [[10, 20], [30, 40], [50, 60]])
    assert parts[1].lines == (4, 2, 5)


@pytest.mark.parametrize("text, line, what", [
    ("1 2\n3 4 5\n", 2, "3 numbers"),
    ("1 2\n# ok\nx 4\n", 3, "'x' is not a number"),
    ("1 nan\n", 1, "finite"),
])
def test_malformed_text_lines_name_file_and_line(tmp_path, text, line, what):
    f = tmp_path / "bad.txt"
    f.write_text(text)
    with pytest.raises(AnnotationError) as err:
        read_annotations(f)
    assert err.value.line == line and what in err.value.message
    assert str(err.value).startswith(f"{f}:{line}: ")


@pytest.mark.parametrize("text, line, what", [
    ("obj,x,y\n", 1, "missing column object, vertex"),
    ("object,vertex,x,y\n0,0,1\n", 2, "3 fields"),
    ("object,vertex,x,y\n0,0,1,2\n0,a,1,2\n", 3, "numbers"),
    ("object,vertex,x,y\n0,0,1,2\n0,0,3,4\n", 3, "repeats vertex 0"),
    ("", 1, "empty"),
])
def test_malformed_csv(tmp_path, text, line, what):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(AnnotationError) as err:
        read_annotations(f)
    assert err.value.line == line and what in err.value.message


def test_missing_file_and_binary(tmp_path):
    with pytest.raises(AnnotationError, match="no such annotation file"):
        read_annotations(tmp_path / "nope.txt")
    (tmp_path / "b.txt").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(AnnotationError, match="not a text file"):
        read_annotations(tmp_path / "b.txt")


def test_point_outside_the_image_names_its_line():
    parts = parse_annotation_text("5 5\n-0.5 9.5\n1 1 10 3\n", "a.txt")
    check_inside(parts[:2], (10, 10))           # the image's area reaches -0.5 .. 9.5
    with pytest.raises(AnnotationError) as err:
        check_inside(parts, (10, 10), "a.txt")
    assert err.value.line == 3 and "(10, 3) is outside the 10x10 image" in err.value.message


def test_scaling_uses_pixel_centres_and_round_trips():
    parts = [Particle(np.array([[0.0, 0.0], [9.0, 4.0]]), (1, 1))]
    up = scale_particles(parts, 2.0)
    np.testing.assert_allclose(up[0].vertices, [[0.5, 0.5], [18.5, 8.5]])
    back = scale_particles(up, 0.5)
    np.testing.assert_allclose(back[0].vertices, parts[0].vertices)
    again = parse_annotation_text(format_annotation_text(up, "hdr"))
    np.testing.assert_allclose(again[0].vertices, up[0].vertices)


def test_clamp_moves_vertices_onto_the_image():
    parts = [Particle(np.array([[133.55, -0.7], [3.0, 4.0]]), (1, 1))]
    out = clamp_particles(parts, (100, 134))
    np.testing.assert_allclose(out[0].vertices, [[133.5, -0.5], [3, 4]])
    check_inside(out, (100, 134))
