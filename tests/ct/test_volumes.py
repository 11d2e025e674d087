"""DICOM series and NIfTI volumes as series of axial slices (covtool.ct.volumes)."""

from __future__ import annotations

import numpy as np
import pytest

from covtool.core.dicom import read_dicom_image
from covtool.core.errors import CovtoolError
from covtool.core.imageio import read_image
from covtool.ct.pipeline import SelectOptions, select_series
from covtool.ct.series import find_series
from covtool.synth.volumes import chest_phantom, dicom_slice, write_dicom_series, write_nifti
from tests.conftest import shared_data

K = 12
#: ImageOrientationPatient of head-first and feet-first, supine and prone axial images
HFS, FFS, HFP, FFP = (1, 0, 0, 0, 1, 0), (-1, 0, 0, 0, 1, 0), (-1, 0, 0, 0, -1, 0), (1, 0, 0, 0, -1, 0)
TRANSPOSED = (0, 1, 0, 1, 0, 0)   # stored rows along the patient's x


@pytest.fixture(scope="module")
def phantom():
    return chest_phantom(K, 64, seed=3)


def shuffled_names(n, seed=0):
    return [f"x{k:03d}" for k in np.random.default_rng(seed).permutation(n)]  # no .dcm suffix


def pixels(series):
    return np.stack([series.read(i) for i in range(len(series.slices))])


def test_dicom_slices_come_in_position_order_on_the_stored_scale(tmp_path, phantom):
    write_dicom_series(tmp_path / "P1", phantom, names=shuffled_names(K), descending=True)
    (tmp_path / "P1" / "DICOMDIR").write_bytes(b"\0" * 200)   # ignored by name
    (tmp_path / "P1" / "notes.txt").write_text("not an image")
    [s] = find_series(tmp_path)
    assert (s.group, s.series, s.kind) == ("P1", "P1", "dicom")
    assert s.positions == [round(-200.0 + 2 * k, 3) for k in range(K)]   # inferior -> superior
    vol = pixels(s)
    assert vol.dtype == np.uint16
    assert np.array_equal(vol, (phantom + 1024).astype(np.uint16))      # HU + 1024
    # instances were numbered from the top down: descending along the positions, consistently
    import pydicom
    inst = [int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber) for p in s.slices]
    assert inst == list(range(K, 0, -1))


@pytest.mark.parametrize("store", [
    {"signed": True, "intercept": 0.0},                   # signed HU, the common scanner way
    {"slope": 0.5, "intercept": -1024.0},                 # slope != 1
    {"signed": True, "slope": 2.0, "intercept": -10.0},
])
def test_rescale_gives_the_same_stored_scale(tmp_path, phantom, store):
    write_dicom_series(tmp_path / "P1", phantom, **store)
    [s] = find_series(tmp_path)
    slope, intercept = store.get("slope", 1.0), store["intercept"]
    hu = np.rint((phantom - intercept) / slope) * slope + intercept   # what the file can hold
    assert np.array_equal(pixels(s), np.rint(hu + 1024).astype(np.uint16))
    # read_image (every stage's decoder) gives the same values
    assert np.array_equal(read_image(s.slices[0]), np.rint(hu[0] + 1024).astype(np.uint16))


def test_dark_level_keeps_its_meaning_across_scanners(tmp_path, phantom):
    """The bug: signed HU with intercept 0 read as stored values put the dark level 1024 HU off."""
    write_dicom_series(tmp_path / "a" / "P1", phantom)                                # HU + 1024
    write_dicom_series(tmp_path / "b" / "P1", phantom, signed=True, intercept=0.0)   # HU
    counts = [[sl.dark_pixels for sl in select_series(find_series(tmp_path / w)[0]).slices]
              for w in ("a", "b")]
    assert counts[0] == counts[1] and max(counts[0]) > 0


@pytest.mark.parametrize("syntax,signed", [
    ("1.2.840.10008.1.2.5", False), ("1.2.840.10008.1.2.4.90", False),      # RLE, JPEG 2000
    ("1.2.840.10008.1.2.4.70", False), ("1.2.840.10008.1.2.4.70", True)])   # JPEG Lossless SV1
def test_compressed_transfer_syntaxes_are_decoded(tmp_path, phantom, syntax, signed):
    store = {"signed": True, "intercept": 0.0} if signed else {}
    write_dicom_series(tmp_path / "P1", phantom, transfer_syntax=syntax, orientation=FFS, **store)
    [s] = find_series(tmp_path)
    assert np.array_equal(pixels(s), (phantom + 1024).astype(np.uint16))
    # decoded at the pixel data's offset (no second parse), as pydicom's dataset decodes it
    import pydicom

    from covtool.core.dicom import _encapsulated_pixels
    assert s.read.headers[0].transfer_syntax == syntax
    direct = _encapsulated_pixels(s.read.headers[0])
    assert direct is not None and np.array_equal(direct, pydicom.dcmread(s.slices[0]).pixel_array)


def test_localizers_and_other_planes_are_left_out_and_counted(tmp_path, phantom):
    folder = tmp_path / "P1"
    write_dicom_series(folder, phantom)
    uid = "1.2.826.0.1.3680043.9.7.1"
    extra = [
        dicom_slice(phantom[0], position=(0, 0, 0), instance=90, series_uid=uid,
                    image_type=("ORIGINAL", "PRIMARY", "LOCALIZER")),
        dicom_slice(phantom[0], position=(0, 0, 0), orientation=(1, 0, 0, 0, 0, -1), instance=91,
                    series_uid=uid),                                     # coronal
        dicom_slice(phantom[0], position=(0, 0, -150), orientation=(0.8, 0.6, 0, -0.6, 0.8, 0),
                    instance=92, series_uid=uid),                         # axial, other orientation
    ]
    for k, ds in enumerate(extra):
        ds.save_as(folder / f"extra{k}.dcm", enforce_file_format=True)
    [s] = find_series(tmp_path)
    assert s.left_out == {"localizer": 1, "not axial": 1, "other orientation": 1}
    assert len(s.slices) == K and not s.bad


def test_two_series_in_one_folder_are_two_series_named_in_one_warning(tmp_path, phantom):
    write_dicom_series(tmp_path / "P1", phantom, series_uid="1.2.3.1", series_number=2)
    write_dicom_series(tmp_path / "P1", phantom[:5], series_uid="1.2.3.2", series_number=5,
                       names=[f"b{k}.dcm" for k in range(5)])
    import pydicom
    for k in range(5):   # a description on the second series only
        ds = pydicom.dcmread(tmp_path / "P1" / f"b{k}.dcm")
        ds.SeriesDescription = "Lung 1.0 B70f"
        ds.save_as(tmp_path / "P1" / f"b{k}.dcm")
    found = find_series(tmp_path)
    assert [(s.group, s.series, len(s.slices)) for s in found] == [("P1", "P1_S2", K), ("P1", "P1_S5", 5)]
    assert found[0].warnings[0] == (
        f"{tmp_path / 'P1'}: 2 DICOM series, each selected on its own and, in patient-diagnose, all "
        f"diagnosed as patient P1: P1_S2 (SeriesNumber 2, {K} slices); "
        "P1_S5 (SeriesNumber 5 'Lung 1.0 B70f', 5 slices)")
    assert not any("DICOM series" in w for w in found[1].warnings)   # one line per folder


def test_manifest_rows_of_two_series_are_split(tmp_path, phantom):
    from covtool.ct.series import series_from_manifest

    a = write_dicom_series(tmp_path / "P1", phantom, series_uid="1.2.3.1", series_number=2)
    b = write_dicom_series(tmp_path / "P1", phantom[:4], series_uid="1.2.3.2", series_number=3,
                           names=[f"b{k}.dcm" for k in range(4)], z0=-150.0)
    import pandas as pd
    df = pd.DataFrame({"path": [str(p) for p in a + b], "group": "P1", "series": "CT"})
    found = series_from_manifest(df)
    assert [(s.series, len(s.slices)) for s in found] == [("CT_S2", K), ("CT_S3", 4)]
    assert "manifest series P1/CT: 2 DICOM series" in found[0].warnings[0]
    assert found[1].rows == list(range(K, K + 4))     # each row stays with its file
    assert found[0].slices == a and found[1].slices == b


def test_mixed_sizes_within_a_series_is_an_error(tmp_path, phantom):
    folder = tmp_path / "P1"
    write_dicom_series(folder, phantom)
    big = np.zeros((80, 80))
    dicom_slice(big, position=(0, 0, 100), instance=50).save_as(folder / "big.dcm", enforce_file_format=True)
    [s] = find_series(tmp_path)
    with pytest.raises(CovtoolError) as err:
        select_series(s)
    assert err.value.path == str(folder / "big.dcm") and "mixed sizes" in err.value.message
    r = select_series(s, SelectOptions(skip_bad=True))
    assert len(r.slices) == K + 1 and r.slices[-1].slice is None and "80x80" in r.slices[-1].error
    assert sum(sl.dark_pixels is not None for sl in r.slices) == K


def test_a_gap_in_a_manifests_slices_is_a_warning(tmp_path, phantom):
    """Slices a user chose (select --only-selected output, an expert's list) may skip some: the
    gap is one warning line, for DICOM and NIfTI alike; in a folder it stays an error."""
    import pandas as pd

    from covtool.ct.series import series_from_manifest

    paths = write_dicom_series(tmp_path / "P1", phantom)
    keep = [k for k in range(K) if k not in (4, 5, 9)]
    vol = write_nifti(tmp_path / "P1.nii.gz", phantom)
    for df in (pd.DataFrame({"path": [str(paths[k]) for k in keep], "group": "P1"}),
               pd.DataFrame({"path": str(vol), "group": "P1", "slice_index": keep})):
        [s] = series_from_manifest(df)
        assert not s.problems and len(s.slices) == len(keep)
        gap = [w for w in s.warnings if "gap" in w]
        first = "IM4.dcm" if s.kind == "dicom" else "slice_index 3"
        assert gap == [f"P1/P1: 2 gaps in the listed slices' positions (the first 6.00 mm after "
                       f"{first}, spacing 2.00 mm); the manifest's slices are used as listed"]
        r = select_series(s)
        assert all(not sl.error for sl in r.slices) and r.threshold is not None
    (tmp_path / "P1" / "IM6.dcm").unlink()   # the folder's own series
    with pytest.raises(CovtoolError, match="gap in slice positions"):
        select_series(find_series(tmp_path / "P1")[0])


def test_a_missing_slice_is_a_gap(tmp_path, phantom):
    folder = tmp_path / "P1"
    paths = write_dicom_series(folder, phantom)
    paths[5].unlink()
    [s] = find_series(tmp_path)
    with pytest.raises(CovtoolError) as err:
        select_series(s)
    assert err.value.path == str(paths[6]) and "gap in slice positions: 4.00 mm" in err.value.message
    assert "IM5.dcm" in err.value.message
    r = select_series(s, SelectOptions(skip_bad=True))
    marked = [sl for sl in r.slices if sl.error]
    assert [sl.path for sl in marked] == [paths[6]] and marked[0].dark_pixels is not None
    assert r.threshold is not None and len(r.slices) == K - 1


@pytest.mark.parametrize("case", ["no pixels", "corrupt", "truncated"])
def test_unusable_dicom_files_name_themselves(tmp_path, phantom, case):
    folder = tmp_path / "P1"
    write_dicom_series(folder, phantom)
    bad = folder / "bad.dcm"
    if case == "no pixels":
        dicom_slice(phantom[0], position=(0, 0, 50), instance=70, pixel_data=False).save_as(
            bad, enforce_file_format=True)
        reason = "without pixel data"
    elif case == "corrupt":
        bad.write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 64)
        reason = "DICOM"
    else:
        data = (folder / "IM3.dcm").read_bytes()
        (folder / "IM3.dcm").unlink()
        bad = folder / "IM3.dcm"
        bad.write_bytes(data[: len(data) - 500])
        reason = f"truncated DICOM (pixel data {64 * 64 * 2 - 500:,} of {64 * 64 * 2:,} bytes)"
    [s] = find_series(tmp_path)
    with pytest.raises(CovtoolError) as err:
        select_series(s)
    assert err.value.path == str(bad) and reason in err.value.message
    r = select_series(s, SelectOptions(skip_bad=True))
    assert [sl.path for sl in r.slices if sl.error] == [bad]


@pytest.mark.parametrize("case", ["compressed cut in half", "header cut", "random bytes", "no pixels"])
def test_damaged_dicom_files_say_what_is_wrong(tmp_path, phantom, case):
    """Issue 16 review: a JPEG-Lossless file cut in half said "no 'Pixel Data' element", a file
    cut at 400 bytes and random bytes named .dcm said "without pixel data"."""
    from covtool.core.dicom import read_ct_slice, read_header
    from covtool.synth.volumes import JPEG_LOSSLESS_SV1

    paths = write_dicom_series(tmp_path / "P1", phantom[:3], transfer_syntax=JPEG_LOSSLESS_SV1)
    bad = paths[1]
    data = bad.read_bytes()
    if case == "compressed cut in half":
        h = read_header(bad)
        stream = len(data) - h.pixel_offset - 12      # the encapsulated items and the delimiter
        bad.write_bytes(data[: len(data) // 2])
        cut = len(data) // 2 - h.pixel_offset - 12
        declared = stream - 8                         # the items' declared bytes, delimiter apart
        want = f"truncated DICOM (pixel data {cut:,} of {declared:,} bytes)"
    elif case == "header cut":
        bad.write_bytes(data[:400])
        want = "truncated DICOM (the file ends at byte 400, in its header: no pixel data)"
    elif case == "random bytes":
        bad.write_bytes(np.random.default_rng(0).bytes(3000))
        want = "not a DICOM file (no DICM magic, unreadable header)"
    else:
        dicom_slice(phantom[1], position=(0, 0, -198), pixel_data=False).save_as(bad, enforce_file_format=True)
        want = "DICOM file without pixel data (not an image)"
    with pytest.raises(CovtoolError) as err:
        read_ct_slice(read_header(bad))
    assert (err.value.message, err.value.path) == (want, str(bad))
    read_ct_slice(read_header(paths[0]))   # its neighbours are fine


def test_an_unreadable_file_of_a_complete_series_is_its_only_error(tmp_path, phantom):
    """Its position is unknown, so the step over it looked like a gap: a second, false error on
    its neighbour. A real gap (a missing file) is still one."""
    paths = write_dicom_series(tmp_path / "P1", phantom)
    paths[5].write_bytes(paths[5].read_bytes()[:400])
    [s] = find_series(tmp_path)
    assert not s.problems and [p for p, _ in s.bad] == [paths[5]]
    r = select_series(s, SelectOptions(skip_bad=True))
    assert [sl.path for sl in r.slices if sl.error] == [paths[5]] and len(r.slices) == K
    paths[8].unlink()                   # one missing file more than the unreadable ones
    [s] = find_series(tmp_path)
    assert list(s.problems) == [7] and "gap in slice positions" in s.problems[7]


def test_no_positions_falls_back_to_instance_numbers(tmp_path, phantom):
    folder = tmp_path / "P1"
    folder.mkdir()
    for k in range(5):
        ds = dicom_slice(phantom[k], position=(0, 0, 0), instance=5 - k)
        del ds.ImagePositionPatient
        ds.save_as(folder / f"{k}.dcm", enforce_file_format=True)
    [s] = find_series(tmp_path)
    assert s.positions is None and "ordered by InstanceNumber" in s.warnings[0]
    assert np.array_equal(pixels(s), (phantom[:5][::-1] + 1024).astype(np.uint16))


@pytest.mark.parametrize("layout,suffix,orientation", [
    ("LPS", ".nii.gz", HFS), ("RAS", ".nii", FFS), ("SLP", ".nii.gz", HFP), ("RAS", ".nii.gz", FFP),
    ("LPS", ".nii", TRANSPOSED), ("RAS", ".nii", HFS)])
def test_nifti_slices_are_the_dicom_series_slices(tmp_path, phantom, layout, suffix, orientation):
    """The same anatomy, asymmetric (heart on the patient's left, spine at the back, a corner
    marker that changes with the slice), as a DICOM series stored head-first or feet-first,
    supine or prone, and as NIfTI in any voxel layout: the same slices, positions and counts."""
    paths = write_dicom_series(tmp_path / "dicom" / "P1", phantom, names=shuffled_names(K),
                               orientation=orientation, descending=orientation in (FFS, FFP))
    if orientation != HFS:   # the files really store another view (the test can fail)
        import pydicom
        stored = pydicom.dcmread(paths[0]).pixel_array.astype(float) - 1024
        assert not np.array_equal(stored, phantom[0])
    vol = write_nifti(tmp_path / f"P1{suffix}", phantom, layout=layout)
    [d] = find_series(tmp_path / "dicom")
    [n] = find_series(vol)
    assert (n.group, n.series, n.kind) == ("P1", "P1", "nifti")
    assert d.positions == n.positions == [round(-200.0 + 2 * k, 3) for k in range(K)]  # inferior first
    assert d.slices == paths
    assert np.array_equal(pixels(d), (phantom + 1024).astype(np.uint16))
    assert np.array_equal(pixels(n), pixels(d))
    rd, rn = select_series(d), select_series(n)     # the region's rows only, where they can be
    counts = [s.dark_pixels for s in rd.slices]
    assert counts == [s.dark_pixels for s in rn.slices] and max(counts) > 0
    assert [s.selected for s in rd.slices] == [s.selected for s in rn.slices]
    whole = select_series(d, keep=lambda item, img: None)   # every slice decoded whole
    assert [s.dark_pixels for s in whole.slices] == counts
    assert n.read.plan["stream"] == (layout != "SLP")


@pytest.mark.parametrize("orientation", [HFS, FFS, HFP, FFP])
def test_region_rows_read_alone_are_the_displayed_rows(tmp_path, phantom, orientation):
    write_dicom_series(tmp_path / "P1", phantom, orientation=orientation)
    [s] = find_series(tmp_path)
    for i in (0, K // 2):
        shape, rows = s.read.rows(i, lambda hw: (10, 37))
        assert shape == (64, 64) and np.array_equal(rows, s.read(i)[10:37])


def test_prone_dicom_counts_what_the_radiologist_sees(tmp_path, phantom):
    """The default region sits below the middle (rows 240..340 of 512): read as stored, a prone
    series (rows posterior -> anterior) counts another part of the chest."""
    write_dicom_series(tmp_path / "HFS" / "P1", phantom)
    write_dicom_series(tmp_path / "HFP" / "P1", phantom, orientation=HFP)
    counts = {w: [sl.dark_pixels for sl in select_series(find_series(tmp_path / w)[0]).slices]
              for w in ("HFS", "HFP")}
    assert counts["HFS"] == counts["HFP"]
    flipped = phantom[:, ::-1, ::-1] + 1024
    from covtool.ct.selection import dark_pixel_count
    assert counts["HFS"] != [dark_pixel_count(sl, (120, 240, 370, 340), 300) for sl in flipped]


def test_nifti_radiological_view(tmp_path, phantom):
    """Rows anterior -> posterior, columns patient's right -> left: the heart (patient's left)
    lies in the image's right half, the spine (posterior) at the bottom."""
    vol = write_nifti(tmp_path / "v.nii.gz", phantom, layout="RAS")
    [n] = find_series(vol)
    sl = n.read(K // 2).astype(float) - 1024
    h, w = sl.shape
    spine = np.argwhere(sl > 500)
    assert spine[:, 0].mean() > 0.7 * h
    heart_cols = np.argwhere((sl > 42) & (sl < 48))[:, 1]
    assert np.median(heart_cols) > w / 2


def test_nifti_scaling_and_4d(tmp_path, phantom):
    import nibabel as nib

    v = write_nifti(tmp_path / "s.nii", phantom, slope=2.0, inter=-1000.0)
    img = nib.load(str(v))
    assert img.dataobj.slope == 2.0
    got = pixels(find_series(v)[0]).astype(int) - 1024
    assert np.abs(got - phantom).max() <= 1      # 2 HU steps, rounded
    four = tmp_path / "four.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(phantom.transpose(2, 1, 0)[..., None], np.int16), np.eye(4)), four)
    assert len(find_series(four)[0].slices) == K
    two = tmp_path / "two.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 4, 2), np.int16), np.eye(4)), two)
    [s] = find_series(two)
    with pytest.raises(CovtoolError) as err:
        select_series(s)
    assert err.value.path == str(two) and "not a 3-D volume (shape 8x8x4x2)" in err.value.message
    assert select_series(s, SelectOptions(skip_bad=True)).slices[0].error.startswith("not a 3-D")


def test_nifti_that_does_not_look_like_hu_warns(tmp_path, phantom):
    v = write_nifti(tmp_path / "v.nii", phantom + 1024, dtype=np.uint16)
    r = select_series(find_series(v)[0])
    assert any("may not hold HU" in w for w in r.warnings)


def test_a_folder_of_nifti_files_is_one_patient_each(tmp_path, phantom):
    write_nifti(tmp_path / "vols" / "case_2.nii.gz", phantom)
    write_nifti(tmp_path / "vols" / "case_10.nii.gz", phantom)
    write_nifti(tmp_path / "vols" / "P7" / "ct.nii", phantom)
    found = find_series(tmp_path / "vols")
    assert [(s.group, s.series) for s in found] == [("case_2", "case_2"), ("case_10", "case_10"), ("P7", "ct")]


def test_read_dicom_image_of_a_non_ct_keeps_stored_values(tmp_path, phantom):
    ds = dicom_slice(phantom[0], position=(0, 0, 0), intercept=0.0, signed=True)
    ds.Modality = "MR"
    ds.save_as(tmp_path / "mr.dcm", enforce_file_format=True)
    assert np.array_equal(read_dicom_image(tmp_path / "mr.dcm"), phantom[0].astype(np.int16))


def test_a_folder_of_only_left_out_images_says_so(tmp_path, phantom):
    folder = tmp_path / "P1"
    folder.mkdir()
    dicom_slice(phantom[0], position=(0, 0, 0), image_type=("ORIGINAL", "PRIMARY", "LOCALIZER")).save_as(
        folder / "scout.dcm", enforce_file_format=True)
    for k in range(2):
        dicom_slice(phantom[k], position=(0, k, 0), orientation=(1, 0, 0, 0, 0, -1), instance=k + 2).save_as(
            folder / f"cor{k}.dcm", enforce_file_format=True)
    [s] = find_series(tmp_path)
    with pytest.raises(CovtoolError) as err:
        select_series(s)
    assert err.value.path == str(folder)
    assert err.value.message == "all 3 images left out (localizer 1, not axial 2): no axial slice to select"
    assert select_series(s, SelectOptions(skip_bad=True)).error.startswith("all 3 images left out")


@pytest.mark.parametrize("modality,intercept,hu", [
    ("CT", True, True), ("OT", True, True), ("OT", False, False), ("MR", True, False)])
def test_read_image_and_the_selection_read_a_dicom_file_alike(tmp_path, phantom, modality, intercept, hu):
    """One policy: an image in HU (CT; OT with a RescaleIntercept: anonymised CT exports) goes
    to HU + 1024 in every stage's decoder and in the selection; any other keeps its values."""
    ds = dicom_slice(phantom[3], position=(0, 0, 0), signed=True, intercept=0.0, orientation=FFS)
    ds.Modality = modality
    if modality == "OT":
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # SC
    if not intercept:
        del ds.RescaleIntercept, ds.RescaleSlope
    (tmp_path / "P1").mkdir()
    ds.save_as(tmp_path / "P1" / "a.dcm", enforce_file_format=True)
    [s] = find_series(tmp_path)
    got = read_image(s.slices[0])
    assert np.array_equal(got, s.read(0))
    stored = phantom[3]   # feet-first: stored columns run toward the patient's right, shown flipped
    expect = (stored + 1024).astype(np.uint16) if hu else stored.astype(np.int16)
    assert np.array_equal(got[:, ::-1], expect) and got.dtype == expect.dtype
    assert (s.value_scale == "hu+1024") is hu
    assert any(("read as CT" if hu else "not an image in HU") in w for w in s.warnings) is (modality != "CT")


def test_odd_sized_8bit_dicom_padded_to_even_is_read(tmp_path):
    import pydicom

    img = np.arange(7 * 5, dtype=np.uint8).reshape(7, 5)
    ds = dicom_slice(img.astype(float), position=(0, 0, 0), intercept=0.0)
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelData = img.tobytes() + b"\0"     # 35 bytes, padded to 36 as the standard says
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "odd.dcm", enforce_file_format=True)
    assert len(pydicom.dcmread(tmp_path / "odd.dcm").PixelData) == 36
    from covtool.core.dicom import read_header, stored_pixels
    assert np.array_equal(stored_pixels(read_header(tmp_path / "odd.dcm")), img)
    assert np.array_equal(read_image(tmp_path / "odd.dcm"), img.astype(np.uint16) + 1024)
    ds.PixelData = img.tobytes() + b"\0\0\0"   # anything else is still a size error
    ds.save_as(tmp_path / "bad.dcm", enforce_file_format=True)
    with pytest.raises(CovtoolError, match="pixel data of 38 bytes where 7x5 needs 35"):
        read_image(tmp_path / "bad.dcm")


def test_stored_channels_reads_a_dicom_header_only(tmp_path, phantom, monkeypatch):
    from pydicom.data import get_testdata_file

    from covtool.core import dicom
    from covtool.core.imageio import stored_channels

    dicom_slice(phantom[0], position=(0, 0, 0)).save_as(tmp_path / "ct.dcm", enforce_file_format=True)
    monkeypatch.setattr(dicom, "stored_pixels", lambda h: pytest.fail("decoded"))
    assert stored_channels(tmp_path / "ct.dcm") == 1
    assert stored_channels(get_testdata_file("SC_rgb_rle.dcm")) == 3


def test_float_nifti_with_nan_warns_once_without_numpy_warnings(tmp_path, phantom, recwarn):
    import warnings

    vol = phantom.astype(np.float32)
    vol[2, :3, :5] = np.nan
    vol[7, 0, 0] = np.nan
    v = write_nifti(tmp_path / "nan.nii.gz", vol, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # a numpy RuntimeWarning would fail here
        r = select_series(find_series(v)[0])
        got = pixels(find_series(v)[0])
    assert [w for w in r.warnings if "NaN" in w] == [
        f"{v}: 16 NaN voxels in 2 slices, read as 0 on the stored scale (-1024 HU, as outside a "
        "scanner's field of view): dark pixels where they fall in the region"]
    assert (got[2, :3, :5] == 0).all() and got[7, 0, 0] == 0
    ok = ~np.isnan(vol)
    assert np.array_equal(got[ok], (np.rint(vol[ok]) + 1024).astype(np.uint16))


@pytest.mark.realdata
def test_covid_ct_md_p001_series():
    folder = shared_data("ct-dicom", "covid-ct-md", "Sample data", "COVID-19 subjects", "P001")
    import pydicom

    [s] = find_series(folder)
    assert len(s.slices) == 148 and not s.left_out and not s.bad and not s.problems
    assert s.positions[0] == -346.1 and s.positions[-1] == -52.1
    assert np.allclose(np.diff(s.positions), 2.0)
    inst = [int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber) for p in s.slices]
    assert inst == list(range(148, 0, -1))       # numbered from the top: descending, consistently
    r = select_series(s)
    sel = np.array([sl.selected for sl in r.slices])
    idx = np.flatnonzero(sel)
    assert idx.max() - idx.min() + 1 == len(idx)          # one contiguous run
    assert 20 < idx.min() and idx.max() < 128             # in the middle, ends discarded
    # slice labels (row 0 = P001, SliceLocation order, ascending as our rows): information only
    labels = np.load(folder.parents[2] / "Slice-level-labels-updated-1.npy")[0][:148].astype(bool)
    inside = (labels & sel).sum() / labels.sum()
    assert inside > 0.5


def test_jpeg_lossless_from_pydicoms_own_test_files():
    """JPEG Lossless, first-order prediction (1.2.840.10008.1.2.4.70, COVID-CT-MD's syntax), as
    shipped in pydicom's wheel: the same pixels as its RLE twin, through every stage's decoder."""
    from pydicom.data import get_testdata_file

    from covtool.core.dicom import read_header

    jpeg, rle = (get_testdata_file(n) for n in ("SC_rgb_jpeg_gdcm.dcm", "SC_rgb_rle.dcm"))
    assert read_header(jpeg).transfer_syntax == "1.2.840.10008.1.2.4.70"
    img = read_image(jpeg)
    assert img.shape == (100, 100, 3) and img.dtype == np.uint8
    assert np.array_equal(img, read_image(rle)) and len(np.unique(img.reshape(-1, 3), axis=0)) > 4


def test_jpeg_ls_from_pydicoms_own_test_files():
    """A JPEG-LS file shipped in pydicom's wheel decodes to its uncompressed twin's pixels."""
    from pydicom.data import get_testdata_file

    from covtool.core.dicom import read_header, stored_pixels

    lossless, plain = (read_header(get_testdata_file(n)) for n in ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"))
    assert lossless.transfer_syntax == "1.2.840.10008.1.2.4.80"
    assert np.array_equal(stored_pixels(lossless), stored_pixels(plain))
