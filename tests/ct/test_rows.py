"""Reading only the region's rows gives what reading the whole slice gives (covtool.ct.rows)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from covtool.core.imageio import read_image
from covtool.ct.pipeline import SelectOptions, select_series
from covtool.ct.rows import tiff_rows
from covtool.ct.series import find_series


def rows_of(shape):
    return shape[0] // 3, shape[0] // 3 + 17


@pytest.mark.parametrize("dtype,kw", [
    (np.uint16, {}),
    (np.uint16, {"rowsperstrip": 7}),
    (">u2", {}),
    (np.int16, {"rowsperstrip": 5}),
    (np.uint8, {}),
    (np.float32, {"rowsperstrip": 16}),
])
def test_rows_equal_the_decoded_slice(tmp_path, dtype, kw):
    img = (np.random.default_rng(0).random((61, 47)) * 3000).astype(dtype)
    p = tmp_path / "s.tif"
    tifffile.imwrite(p, img, **kw)
    shape, rows = tiff_rows(p, rows_of)
    y0, y1 = rows_of(img.shape)
    assert shape == (61, 47) and rows.dtype.kind == np.dtype(dtype).kind
    assert np.array_equal(rows, read_image(p)[y0:y1])


@pytest.mark.parametrize("case", ["zlib", "tiled", "rgb", "truncated", "png", "bigtiff"])
def test_anything_else_is_left_to_the_full_reader(tmp_path, case):
    img = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    p = tmp_path / "s.tif"
    if case == "zlib":
        tifffile.imwrite(p, img, compression="zlib")
    elif case == "tiled":
        tifffile.imwrite(p, img, tile=(16, 16))
    elif case == "rgb":
        tifffile.imwrite(p, np.stack([img] * 3, -1), photometric="rgb")
    elif case == "truncated":
        tifffile.imwrite(p, img)
        p.write_bytes(p.read_bytes()[:-100])
    elif case == "png":
        p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    else:
        tifffile.imwrite(p, img, bigtiff=True)
    assert tiff_rows(p, rows_of) is None


def test_select_counts_are_the_same_with_and_without_whole_slices(ct_patients, tmp_path):
    from covtool.synth.volumes import chest_phantom, write_dicom_series

    root, _ = ct_patients
    write_dicom_series(tmp_path / "P1", chest_phantom(10, 96, seed=1))
    for s in find_series(root)[:2] + find_series(tmp_path):
        seen: list = []
        fast = select_series(s, SelectOptions())
        full = select_series(s, SelectOptions(), keep=lambda item, img, seen=seen: seen.append(img.shape))
        assert len(seen) == len(s.slices)
        assert [x.dark_pixels for x in fast.slices] == [x.dark_pixels for x in full.slices]
        assert fast.threshold == full.threshold
