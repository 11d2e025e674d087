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


# ---------------------------------------------------------------------------------------------
# Patients of DICOM series and NIfTI volumes (issue 16 review: patients merged by the folder rule)


def dicom_patient(folder, patient_id, uid, k=4):
    """A small DICOM series in ``folder`` whose images carry ``patient_id``."""
    import pydicom

    from covtool.synth.volumes import chest_phantom, write_dicom_series

    paths = write_dicom_series(folder, chest_phantom(k, 32, seed=1), series_uid=f"1.2.826.0.1.3680043.9.7.{uid}")
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.PatientID = patient_id
        ds.save_as(p)
    return paths


def keys(found):
    return [s.key for s in found]


def test_dicom_patients_in_a_category_folder_are_never_one_patient(tmp_path):
    """COVID-CT-MD: ``Sample data/COVID-19 subjects/P001/*.dcm``: the folder rule took the category
    folder for the patient, so P001 and P002 became one patient."""
    cat = tmp_path / "covid-ct-md" / "Sample data" / "COVID-19 subjects"
    dicom_patient(cat / "P001", "98C14734-ASSH", 1)
    found = find_series(tmp_path / "covid-ct-md")
    assert keys(found) == [("P001", "P001")]            # alone in its category folder
    assert keys(find_series(cat / "P001")) == [("P001", "P001")]   # a series folder given
    dicom_patient(cat / "P002", "1E2D3C4B", 2)
    found = find_series(tmp_path / "covid-ct-md")
    assert keys(found) == [("P001", "P001"), ("P002", "P002")]
    assert found[0].warnings == [f"{cat}: DICOM series of 2 patients (their PatientIDs differ): each "
                                 "is its own patient (P001, P002), not one patient 'COVID-19 subjects'"]


def test_one_patients_series_folders_stay_one_patient(tmp_path):
    dicom_patient(tmp_path / "pats" / "p1" / "SR_2", "A", 1)
    dicom_patient(tmp_path / "pats" / "p1" / "SR_3", "A", 2)
    dicom_patient(tmp_path / "pats" / "p2" / "SR_2", "B", 3)
    dicom_patient(tmp_path / "pats" / "p3" / "SR_2", "C", 4)
    found = find_series(tmp_path / "pats")
    assert keys(found) == [("p1", "SR_2"), ("p1", "SR_3"), ("p2", "SR_2"), ("p3", "SR_2")]
    assert not any(s.warnings for s in found)
    # the same PatientID everywhere (an anonymiser's constant): the folders decide
    dicom_patient(tmp_path / "anon" / "1", "ANON", 5)
    dicom_patient(tmp_path / "anon" / "2", "ANON", 6)
    assert keys(find_series(tmp_path / "anon")) == [("1", "1"), ("2", "2")]


def test_a_folder_named_as_the_patient_id_is_the_patient(tmp_path):
    """TCIA's layout: Collection/<PatientID>/<study>/<series>/*.dcm."""
    dicom_patient(tmp_path / "coll" / "LIDC-0001" / "01-01-2000-NA-30178" / "3000566-NA-03192", "LIDC-0001", 1)
    dicom_patient(tmp_path / "coll" / "LIDC-0002" / "01-01-2000-NA-11111" / "3000923-NA-62357", "LIDC-0002", 2)
    assert [s.group for s in find_series(tmp_path / "coll")] == ["LIDC-0001", "LIDC-0002"]


def test_one_folder_of_several_patients_files_gives_each_patient_its_id(tmp_path):
    dicom_patient(tmp_path / "mixed", "A", 1)
    paths = dicom_patient(tmp_path / "other", "B", 2)
    for p in paths:
        p.rename(tmp_path / "mixed" / f"b_{p.name}")
    found = find_series(tmp_path / "mixed")
    assert sorted(s.group for s in found) == ["A", "B"]
    assert any("DICOM files of 2 patients (PatientID A, B) in one folder" in w for s in found for w in s.warnings)


def test_two_patients_never_share_a_group_name(tmp_path):
    """Two patients' series folders given as INPUTs, both named SR_2 (collect_series names them
    apart); the same within one INPUT for NIfTI volumes sharing a stem in two folders."""
    from covtool.ct.series import collect_series
    from covtool.synth.volumes import chest_phantom, write_nifti

    dicom_patient(tmp_path / "p1" / "SR_2", "A", 1)
    dicom_patient(tmp_path / "p2" / "SR_2", "B", 2)
    series, _ = collect_series([str(tmp_path / "p1" / "SR_2"), str(tmp_path / "p2" / "SR_2")], None)
    assert [s.group for s in series] == ["p1_SR_2", "p2_SR_2"]
    assert "SR_2: the name of 2 patients" in series[0].warnings[-1]
    vol = chest_phantom(4, 32, seed=1)
    for cat in ("train", "test"):
        for stem in ("P001", "P002"):
            write_nifti(tmp_path / "nii" / cat / f"{stem}.nii.gz", vol)
    assert [s.key for s in find_series(tmp_path / "nii")] == [
        ("test_P001", "P001"), ("test_P002", "P002"), ("train_P001", "P001"), ("train_P002", "P002")]


def test_nifti_volumes_are_one_patient_each_even_in_a_category_folder(tmp_path):
    from covtool.synth.volumes import chest_phantom, write_nifti

    vol = chest_phantom(4, 32, seed=1)
    for name in ("CT-1/study_0001.nii.gz", "CT-1/study_0002.nii.gz", "CT-2/study_0003.nii.gz",
                 "case7/ct.nii", "P001.nii", "P001.nii.gz"):
        write_nifti(tmp_path / "m" / name, vol)
    found = find_series(tmp_path / "m")
    assert keys(found) == [("P001", "P001.nii"), ("P001", "P001.nii.gz"), ("case7", "ct"),
                           ("study_0001", "study_0001"), ("study_0002", "study_0002"), ("CT-2", "study_0003")]


def test_symlinked_patient_folders_are_followed_once(tmp_path):
    import os

    touch_slices(tmp_path / "real" / "P001", ["1.tif", "2.tif"])
    touch_slices(tmp_path / "real" / "P002", ["1.tif"])
    links = tmp_path / "links"
    links.mkdir()
    os.symlink(tmp_path / "real" / "P001", links / "P001")
    os.symlink(tmp_path / "real" / "P002", links / "P002")
    os.symlink(links, tmp_path / "real" / "P001" / "loop")      # a loop back up: skipped
    found = find_series(links)
    assert [(s.key, len(s.slices)) for s in found] == [(("P001", "P001"), 2), (("P002", "P002"), 1)]
    assert found[0].slices[0] == links / "P001" / "1.tif"        # paths as found under INPUT
