from __future__ import annotations

import numpy as np

from covtool.core.imageio import write_image
from covtool.ct.series import find_series


def touch_slices(folder, names):
    for n in names:
        write_image(folder / n, np.zeros((4, 4), np.uint16))


def test_patients_series_slices_layout(tmp_path):
    touch_slices(tmp_path / "P1" / "SR_2", ["IM10.tif", "IM2.tif", "IM1.tif"])
    touch_slices(tmp_path / "P1" / "SR_3", ["a.tif"])
    touch_slices(tmp_path / "P10" / "SR_2", ["a.tif"])
    touch_slices(tmp_path / "P2" / "SR_2", ["a.tif"])
    found = find_series(tmp_path)
    assert [s.key for s in found] == [("P1", "SR_2"), ("P1", "SR_3"), ("P2", "SR_2"), ("P10", "SR_2")]
    assert [p.name for p in found[0].slices] == ["IM1.tif", "IM2.tif", "IM10.tif"]


def test_patient_slices_layout_and_series_folder(tmp_path):
    touch_slices(tmp_path / "pats" / "P1", ["1.png", "2.png"])
    touch_slices(tmp_path / "pats" / "P2", ["1.png"])
    assert [s.key for s in find_series(tmp_path / "pats")] == [("P1", "P1"), ("P2", "P2")]
    # a series folder given directly: the group is the folder above it
    touch_slices(tmp_path / "Q7" / "SR_4", ["1.tif"])
    assert [s.key for s in find_series(tmp_path / "Q7" / "SR_4")] == [("Q7", "SR_4")]
    # one patient's folder with --group
    assert [s.key for s in find_series(tmp_path / "Q7", group="Q7")] == [("Q7", "SR_4")]


def test_empty_leaf_folders_are_reported_and_other_files_ignored(tmp_path):
    touch_slices(tmp_path / "P1" / "SR_2", ["1.tif"])
    (tmp_path / "P1" / "SR_2" / "notes.txt").write_text("x")
    (tmp_path / "P1" / "SR_3").mkdir()
    (tmp_path / ".hidden").mkdir()
    found = find_series(tmp_path)
    assert [(s.key, len(s.slices)) for s in found] == [(("P1", "SR_2"), 1), (("P1", "SR_3"), 0)]
