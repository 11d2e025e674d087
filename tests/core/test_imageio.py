from __future__ import annotations

import numpy as np
import pytest
import tifffile

from covtool.core.errors import ImageError
from covtool.core.imageio import grey_channel, is_colour, read_image, write_image


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff_keeps_dtype_and_values(tmp_path, dtype):
    rng = np.random.default_rng(0)
    img = (rng.random((17, 23)) * 4000).astype(dtype)
    p = write_image(tmp_path / "x.tif", img)
    back = read_image(p)
    assert back.dtype == dtype and np.array_equal(back, img)


def test_png_16bit_and_colour_order(tmp_path):
    img16 = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 15
    back = read_image(write_image(tmp_path / "g.png", img16))
    assert back.dtype == np.uint16 and np.array_equal(back, img16)
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200  # red
    back = read_image(write_image(tmp_path / "c.png", rgb))
    assert back.shape == (4, 5, 3) and back[0, 0].tolist() == [200, 0, 0]
    assert is_colour(back)
    assert not is_colour(np.dstack([img16, img16, img16]))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_grey_channel_is_exact_for_every_value(dtype):
    v = np.arange(np.iinfo(dtype).max + 1, dtype=dtype).reshape(-1, 16)
    rgb = np.dstack([v, v, v])
    grey = grey_channel(rgb)
    assert grey is not None and grey.dtype == dtype and np.array_equal(grey, v)
    rgba = np.dstack([v, v, v, np.zeros_like(v)])            # alpha is not a colour channel
    assert np.array_equal(grey_channel(rgba), v)
    for c in range(3):                                          # one sample off grey, any channel
        for value in (0, 1, np.iinfo(dtype).max):
            off = rgb.copy()
            off[3, 5, c] = value if off[3, 5, c] != value else value ^ 1
            assert grey_channel(off) is None and is_colour(off), (c, value)


def test_grey_channel_other_shapes_and_dtypes():
    v = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    assert np.array_equal(grey_channel(np.dstack([v, v, v])), v)
    off = np.dstack([v, v, v + 1e-6])
    assert grey_channel(off) is None
    assert grey_channel(v) is v
    assert np.array_equal(grey_channel(v[..., None]), v)
    assert grey_channel(np.zeros((0, 4, 3), np.uint8)).shape == (0, 4)
    alpha = np.dstack([v, np.ones_like(v)])                     # grey and alpha: grey
    assert np.array_equal(grey_channel(alpha), v) and not is_colour(alpha.astype(np.uint16))
    big = np.random.default_rng(3).integers(0, 65536, (517, 1031), dtype=np.uint16)   # odd sizes
    assert np.array_equal(grey_channel(np.dstack([big, big, big])), big)
    assert np.array_equal(grey_channel(np.dstack([big, big, big]).astype(">u2")), big)


def test_truncated_tiff_is_an_error_naming_the_file(tmp_path):
    p = tmp_path / "t.tif"
    tifffile.imwrite(p, np.ones((256, 256), np.uint16))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as exc:
        read_image(p)
    assert str(exc.value).startswith(str(p)) and "TIFF" in str(exc.value)


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("bad.png", b"not a png at all", "unreadable or truncated PNG"),
    ("empty.jpg", b"", "empty file"),
    ("bad.tif", b"II*\x00garbage", "unreadable TIFF"),
    ("x.gif", b"GIF89a", "unsupported image format"),
])
def test_unreadable_images(tmp_path, name, content, reason):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(ImageError, match=reason):
        read_image(p)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such image file"):
        read_image(tmp_path / "none.tif")
