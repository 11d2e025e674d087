"""PNG and TIFF files around already-compressed rows hold exactly those rows."""

from __future__ import annotations

import io
import zlib

import cv2
import numpy as np
import pytest
import tifffile

from covtool.core.image_containers import png_from_idat, tiff_from_deflate


@pytest.mark.parametrize("colours,bits", [(1, 8), (3, 8), (1, 16)])
def test_png_around_filtered_rows(colours, bits):
    rng = np.random.default_rng(colours * bits)
    dtype = np.uint8 if bits == 8 else np.dtype(">u2")
    img = rng.integers(0, 2 ** bits, size=(5, 7, colours), dtype=np.uint64).astype(dtype)
    rows = b"".join(b"\x00" + img[y].tobytes() for y in range(5))       # filter 0 (none) a row
    data = png_from_idat(zlib.compress(rows), 7, 5, bits, colours, icc=b"not really a profile")
    assert b"iCCP" in data and zlib.compress(rows) in data
    got = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    want = img[..., 0] if colours == 1 else img[..., ::-1]              # OpenCV gives BGR
    assert np.array_equal(got, want.astype(got.dtype))


@pytest.mark.parametrize("predictor", [False, True])
def test_tiff_of_one_deflate_strip(predictor):
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    stored = img.copy()
    if predictor:          # TIFF predictor 2: each sample minus its left neighbour, per channel
        stored[:, 1:] = np.diff(img.astype(np.int16), axis=1).astype(np.uint8)
    strip = zlib.compress(stored.tobytes())
    data = tiff_from_deflate(strip, 6, 4, 8, 3, horizontal_predictor=predictor)
    assert strip in data
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        assert tif.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        assert np.array_equal(tif.pages[0].asarray(), img)
