"""Row ids of the selection (covtool.ct.pipeline.result_rows): unique and stable."""

from __future__ import annotations

import numpy as np

from covtool.core.imageio import write_image
from covtool.ct.pipeline import result_rows, select_series
from covtool.ct.series import find_series
from covtool.synth.volumes import chest_phantom, write_dicom_series


def ids(root):
    return [r["id"] for s in find_series(root) for r in result_rows(select_series(s))]


def test_dicom_files_named_by_uid_get_unique_ids(tmp_path):
    """Scanners name files by their SOP Instance UID, no suffix: the id keeps the whole name
    (a stem cut at the last dot gave every row of a series one id)."""
    vol = chest_phantom(5, 32)
    for patient in ("1", "2"):   # numeric folders
        names = [f"1.3.12.2.1107.5.1.4.92591.3000002{patient}.{k}" for k in range(5)]
        write_dicom_series(tmp_path / patient, vol, names=names, series_uid=f"1.2.3.{patient}")
    got = ids(tmp_path)
    assert len(set(got)) == 10
    assert got[:2] == ["1_1_1.3.12.2.1107.5.1.4.92591.30000021.0", "1_1_1.3.12.2.1107.5.1.4.92591.30000021.1"]
    assert got == ids(tmp_path)   # stable


def test_numeric_folders_do_not_make_file_names_ids(tmp_path):
    img = np.zeros((8, 8), np.uint16)
    for where in ("1/2", "12/2", "patient1/SR_2"):
        write_image(tmp_path / where / "IM12.tif", img)
    write_image(tmp_path / "patient1" / "SR_3" / "patient1_SR_3_IM00010.tif", img)   # COVID-CTset's
    write_image(tmp_path / "P5" / "a.tif", img)
    write_image(tmp_path / "P5" / "a.png", img.astype(np.uint8))   # one stem, two files
    assert ids(tmp_path) == ["1_2_IM12", "12_2_IM12", "P5_P5_a.png", "P5_P5_a.tif",
                             "patient1_SR_2_IM12", "patient1_SR_3_IM00010"]
