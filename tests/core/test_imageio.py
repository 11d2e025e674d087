from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import tifffile

from covtool.core.errors import ImageError
from covtool.core.imageio import (
    MAX_IMAGE_PIXELS,
    composite_alpha,
    grey_channel,
    header_size,
    image_format,
    is_colour,
    read_image,
    sniff_format,
    stored_channels,
    suffix_mismatch,
    to_channels,
    to_grey,
    write_image,
)
from tests.conftest import shared_data


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
    ("bad.png", b"not a png at all", "not an image file: its content is none of PNG, JPEG, TIFF"),
    ("page.jpg", b"<html><body>404</body></html>", "not an image file"),
    ("empty.jpg", b"", "empty file"),
    ("bad.tif", b"II*\x00garbage", "unreadable TIFF"),
    ("x.gif", b"GIF89a", "unsupported image format GIF"),
    ("x.png", b"GIF89a" + bytes(40), "unsupported image format GIF"),
    ("half.png", b"\x89PNG\r\n\x1a\n\x00\x00", "unreadable or truncated PNG image"),
])
def test_unreadable_images(tmp_path, name, content, reason):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(ImageError, match=reason):
        read_image(p)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such image file"):
        read_image(tmp_path / "none.tif")


# --- one decoder, by content -------------------------------------------------------------------

def _encoded(img: np.ndarray, ext: str) -> bytes:
    import cv2

    out = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(ext, out)
    assert ok
    return data.tobytes()


def _tiff_bytes(img: np.ndarray, **kw) -> bytes:
    import io

    buf = io.BytesIO()
    tifffile.imwrite(buf, img, **kw)
    return buf.getvalue()


RNG = np.random.default_rng(5)
GREY8 = RNG.integers(0, 256, (9, 7), dtype=np.uint8)
GREY16 = RNG.integers(0, 65536, (9, 7), dtype=np.uint16)


def test_a_png_named_file_holding_jpeg_is_read_as_jpeg(tmp_path):
    """COVID-CT: 34 '.png' files hold JPEG data (the defect of issue 16)."""
    flat = np.full((16, 16), 90, np.uint8)
    p = tmp_path / "2020.03.01-p4-1.png"
    p.write_bytes(_encoded(flat, ".jpg"))
    assert image_format(p) == "jpeg"
    assert suffix_mismatch(p, "jpeg") == "'2020.03.01-p4-1.png' holds JPEG data"
    img = read_image(p)
    assert img.dtype == np.uint8 and img.shape == (16, 16) and np.array_equal(img, flat)


@pytest.mark.parametrize(("name", "data", "fmt", "ref"), [
    ("a.jpg", _encoded(GREY8, ".png"), "png", GREY8),           # a JPEG-named PNG: lossless
    ("a.tif", _encoded(GREY16, ".png"), "png", GREY16),         # a TIFF-named 16-bit PNG
    ("a.png", _tiff_bytes(GREY16), "tiff", GREY16),             # a PNG-named TIFF
    ("a.png", _tiff_bytes(GREY16, bigtiff=True), "tiff", GREY16),
    ("a.jpeg", _tiff_bytes(GREY16.astype(">u2")), "tiff", GREY16),  # big-endian 'MM\0*'
    ("a.png", _encoded(GREY8, ".bmp"), "bmp", GREY8),
    ("a.jpg", _encoded(GREY8, ".pgm"), "pnm", GREY8),
    ("scan", _encoded(GREY8, ".png"), "png", GREY8),            # no suffix at all
])
def test_the_content_decides_the_format_not_the_name(tmp_path, name, data, fmt, ref):
    p = tmp_path / name
    p.write_bytes(data)
    assert image_format(p) == fmt
    img = read_image(p)
    assert img.dtype == ref.dtype and np.array_equal(img, ref)


def test_sniff_format_magic_numbers():
    assert sniff_format(b"\x89PNG\r\n\x1a\n" + bytes(8)) == "png"
    assert sniff_format(b"\xff\xd8\xff\xe0") == "jpeg"
    for magic in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        assert sniff_format(magic + bytes(8)) == "tiff"
    assert sniff_format(b"BM" + bytes(12) + (40).to_bytes(4, "little")) == "bmp"
    assert sniff_format(b"BMW is not a bitmap, nor this") is None      # 'BM' alone is not enough
    assert sniff_format(b"P5\n7 9\n255\n") == "pnm" and sniff_format(b"P6 1 1 255 ") == "pnm"
    assert sniff_format(b"PK\x03\x04") is None                          # a zip
    assert sniff_format(bytes(128) + b"DICM") == "dicom"
    assert sniff_format(b"\x08\x00\x05\x00CS\x0a\x00", ".dcm") == "dicom"   # no preamble: by name
    assert sniff_format(b"\x08\x00\x05\x00CS\x0a\x00", ".png") is None
    assert sniff_format(b"\x89PNG\r\n\x1a\n" + bytes(8), ".dcm") == "png"  # magic wins over name
    assert sniff_format(b"") is None


def test_dicom_is_found_by_its_magic_whatever_the_name(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 9, 7, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = GREY16.tobytes()
    p = tmp_path / "slice.png"       # a DICOM under a wrong name
    pydicom.dcmwrite(p, ds, enforce_file_format=True)
    assert image_format(p) == "dicom"
    assert np.array_equal(read_image(p), GREY16)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".ppm", ".tif"])
@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_files_are_an_error_naming_the_file(tmp_path, ext, keep):
    img = RNG.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    data = _tiff_bytes(img, photometric="rgb") if ext == ".tif" else _encoded(img, ext)
    p = tmp_path / f"cut{ext}"
    p.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ImageError) as exc:
        read_image(p)
    text = str(exc.value)
    assert text.startswith(f"{p}: ") and ("truncated" in text or "unreadable" in text), text


def test_an_image_with_five_channels_is_an_error(tmp_path):
    p = tmp_path / "five.tif"
    tifffile.imwrite(p, np.zeros((6, 6, 5), np.uint8), photometric="minisblack", planarconfig="contig")
    with pytest.raises(ImageError, match=r"unexpected image shape \(6, 6, 5\)"):
        read_image(p)


# --- the one channel policy ---------------------------------------------------------------------

PIXEL = np.array([200, 100, 50], np.uint8)          # luma 0.299*200 + 0.587*100 + 0.114*50 = 124.2


def _layouts():
    grey = np.array([[0, 7], [128, 255]], np.uint8)
    colour = np.tile(PIXEL, (2, 2, 1))
    colour[0, 0] = (10, 10, 10)
    return {
        "grey": grey,
        "grey-as-rgb": np.dstack([grey, grey, grey]),
        "rgb": colour,
        "rgba-opaque": np.dstack([colour, np.full((2, 2), 255, np.uint8)]),
        "rgba-half": np.dstack([colour, np.array([[255, 51], [0, 255]], np.uint8)]),
        "grey-alpha": np.dstack([grey, np.array([[255, 0], [255, 51]], np.uint8)]),
    }


def test_channel_policy_exact_values():
    lay = _layouts()
    grey, rgb = lay["grey"], lay["rgb"]
    # grey: kept as stored at 1 channel, repeated at 3
    assert to_channels(grey, 1).dtype == np.uint8 and np.array_equal(to_channels(grey, 1)[..., 0], grey)
    assert np.array_equal(to_channels(grey, 3), np.dstack([grey, grey, grey]))
    # grey stored as RGB: found exactly, the one channel kept (uint8, no luma rounding)
    g = to_channels(lay["grey-as-rgb"], 1)
    assert g.shape == (2, 2, 1) and g.dtype == np.uint8 and np.array_equal(g[..., 0], grey)
    # colour: RGB kept at 3; BT.601 luma, unrounded float32, at 1
    assert to_channels(rgb, 3) is rgb
    y = to_channels(rgb, 1)[..., 0]
    assert y.dtype == np.float32
    assert np.allclose(y, [[10, 124.2], [124.2, 124.2]], atol=1e-4)
    # RGBA: opaque -> alpha dropped, values and dtype kept
    opaque = to_channels(lay["rgba-opaque"], 3)
    assert opaque.dtype == np.uint8 and np.array_equal(opaque, rgb)
    # partly transparent -> composited on black: value * alpha / 255
    half = to_channels(lay["rgba-half"], 3)
    assert half.dtype == np.float32
    assert np.allclose(half[0, 1], PIXEL * 0.2) and np.array_equal(half[1, 0], [0, 0, 0])
    assert np.array_equal(half[1, 1], PIXEL) and np.array_equal(half[0, 0], [10, 10, 10])
    assert np.allclose(to_channels(lay["rgba-half"], 1)[0, 1, 0], 124.2 * 0.2, atol=1e-4)
    # grey and alpha: composited the same way
    ga = to_channels(lay["grey-alpha"], 1)[..., 0]
    assert np.allclose(ga, [[0, 0], [128, 51]])
    assert np.allclose(to_channels(lay["grey-alpha"], 3)[1, 1], [51, 51, 51])
    # an alpha that is 0 everywhere is unused: dropped, not a black image
    unused = np.dstack([rgb, np.zeros((2, 2), np.uint8)])
    assert np.array_equal(composite_alpha(unused), rgb)
    # 16-bit and float alpha scale by their own maximum
    rgba16 = np.dstack([rgb.astype(np.uint16) * 100, np.full((2, 2), 65535 // 5, np.uint16)])
    assert np.allclose(composite_alpha(rgba16)[0, 1], PIXEL.astype(float) * 100 / 5, rtol=1e-4)
    rgbaf = np.dstack([rgb.astype(np.float32), np.full((2, 2), 0.5, np.float32)])
    assert np.allclose(composite_alpha(rgbaf)[0, 1], PIXEL / 2)
    with pytest.raises(ValueError):
        to_channels(grey, 2)


def test_channel_policy_on_files_as_read(tmp_path):
    """The same results from files: grey, grey-as-RGB, RGB and RGBA PNGs through read_image."""
    for name, img in _layouts().items():
        if img.ndim == 3 and img.shape[2] == 2:    # OpenCV writes no grey-and-alpha PNG
            path = tmp_path / f"{name}.tif"
            tifffile.imwrite(path, img, photometric="minisblack", extrasamples=["unassalpha"])
        else:
            path = write_image(tmp_path / f"{name}.png", img)
        back = read_image(path)
        assert back.dtype == np.uint8 and np.array_equal(back, img), name
        assert np.array_equal(to_channels(back, 1), to_channels(img, 1)), name
        assert np.array_equal(to_channels(back, 3), to_channels(img, 3)), name
    assert np.array_equal(to_grey(read_image(tmp_path / "grey-as-rgb.png")), _layouts()["grey"])


def test_16_bit_and_float_are_kept():
    v16 = GREY16
    assert to_channels(v16, 1).dtype == np.uint16 and np.array_equal(to_channels(v16, 1)[..., 0], v16)
    vf = (GREY16 / 65535).astype(np.float32)
    assert to_channels(vf, 3).dtype == np.float32 and np.array_equal(to_channels(vf, 3)[..., 2], vf)


def test_stored_channels_from_the_header_alone(tmp_path):
    lay = _layouts()
    cases = {"g.png": (lay["grey"], 1), "c.png": (lay["rgb"], 3), "a.png": (lay["rgba-half"], 4),
             "g.jpg": (lay["grey"], 1), "c.jpg": (lay["rgb"], 3), "c.ppm": (lay["rgb"], 3),
             "g.pgm": (lay["grey"], 1), "g.tif": (lay["grey"], 1), "c.tif": (lay["rgb"], 3),
             "c.bmp": (lay["rgb"], None)}
    for name, (img, n) in cases.items():
        assert stored_channels(write_image(tmp_path / name, img)) == n, name
    (tmp_path / "x.png").write_bytes(_encoded(lay["rgb"], ".jpg"))   # by content
    assert stored_channels(tmp_path / "x.png") == 3
    (tmp_path / "junk.png").write_bytes(b"junk")
    assert stored_channels(tmp_path / "junk.png") is None


# --- ingest accepts exactly what the later stages read ------------------------------------------

def test_ingest_verify_reports_an_undecodable_file_naming_it(tmp_path):
    from typer.testing import CliRunner

    from covtool.cli.app import app
    from covtool.core.manifest import read_manifest
    from tests.datasets.fixtures import covid_ct

    root = covid_ct(tmp_path / "covid-ct")
    cov = root / "Images-processed" / "CT_COVID"
    (cov / "2020.01.24-p1-2.png").write_bytes(_encoded(np.full((12, 10), 100, np.uint8), ".jpg"))
    bad = cov / "2020.02.10-p3-1.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)          # a PNG cut after its signature
    out = tmp_path / "ct.csv"
    r = CliRunner().invoke(app, ["ingest", "covid-ct", str(root), "-o", str(out)])
    assert r.exit_code == 1
    assert f"{bad}: unreadable image: unreadable or truncated PNG image" in " ".join(r.output.split())
    r = CliRunner().invoke(app, ["ingest", "covid-ct", str(root), "-o", str(out), "--skip-bad"])
    assert r.exit_code == 0, r.output
    df = read_manifest(out)
    assert len(df) == 6 and str(bad) not in set(df["path"])
    for path in df["path"]:       # what ingest kept, the decoder reads
        assert read_image(path).shape == (12, 10)


@pytest.mark.realdata
def test_every_covid_ct_image_decodes_by_content():
    """The release: 746 images, 34 '.png' files hold JPEG; uint8 grey, RGB or RGBA."""
    from collections import Counter

    root = shared_data("covid-ct", "Images-processed")
    formats, layouts = Counter(), Counter()
    for p in sorted(root.glob("*/*")):
        fmt = image_format(p)
        formats[(p.suffix.lower(), fmt)] += 1
        img = read_image(p)
        assert img.dtype == np.uint8
        layouts[1 if img.ndim == 2 else img.shape[2]] += 1
        assert to_channels(img, 3).shape == (*img.shape[:2], 3)
    assert formats == {(".png", "png"): 510, (".png", "jpeg"): 34, (".jpg", "jpeg"): 202}
    assert sum(layouts.values()) == 746 and set(layouts) <= {1, 3, 4}


def test_to_gray_composites_alpha_as_to_channels_does():
    grey = np.array([[0, 7], [128, 255]], np.uint8)
    ga = np.dstack([grey, np.array([[255, 0], [255, 51]], np.uint8)])
    rgba = np.dstack([grey, grey, grey, ga[..., 1]])
    from covtool.core.imageio import to_gray

    for img in (ga, rgba):
        assert np.allclose(to_gray(img), to_channels(img, 1)[..., 0])
        assert np.allclose(to_gray(img), [[0, 0], [128, 51]])
    opaque = np.dstack([grey, grey, grey, np.full((2, 2), 255, np.uint8)])
    assert to_gray(opaque).dtype == np.uint8 and np.array_equal(to_gray(opaque), grey)


def test_a_dcm_without_its_preamble_is_read_by_its_name(tmp_path):
    pytest.importorskip("pydicom")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 9, 7, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = GREY16.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    p = tmp_path / "old.dcm"
    ds.save_as(p, enforce_file_format=False, implicit_vr=False, little_endian=True)
    assert p.read_bytes()[128:132] != b"DICM"
    assert image_format(p) == "dicom" and np.array_equal(read_image(p), GREY16)
    renamed = p.rename(tmp_path / "old.bin")            # no magic, no name: not an image
    with pytest.raises(ImageError, match="not an image file"):
        read_image(renamed)


# -- a header claiming a huge size (issue 18, item 6) ------------------------------------------

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(w: int = 50000, h: int = 50000) -> bytes:
    """A valid PNG header (8-bit grey, ``w`` x ``h``) over a small IDAT."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 100))
            + _chunk(b"IEND", b""))


def huge_tiff(w: int = 50000, h: int = 50000) -> bytes:
    """A little-endian baseline TIFF whose tags claim ``w`` x ``h`` 8-bit pixels in 100 bytes."""
    tags = [(256, 4, w), (257, 4, h), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 0),
            (277, 3, 1), (278, 4, h), (279, 4, 100)]
    data_at = 8 + 2 + 12 * len(tags) + 4
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHI", tag, typ, 1) + (struct.pack("<HH", v, 0) if typ == 3 else
                                            struct.pack("<I", data_at if tag == 273 else v))
        for tag, typ, v in tags) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\0" * 100


@pytest.mark.parametrize("name,data", [("huge.png", huge_png()), ("huge.tif", huge_tiff()),
                                       ("wide.png", huge_png(2**20, 2**9))])
def test_a_header_claiming_a_huge_size_is_one_error_naming_the_file(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ImageError) as err:
        read_image(path)
    w, h = (2**20, 2**9) if name == "wide.png" else (50000, 50000)
    assert str(err.value) == (f"{path}: its header claims {w}x{h} pixels, over the decoder's "
                              f"limit of {MAX_IMAGE_PIXELS} (2^28) pixels (a damaged header, or too large)")


def test_header_sizes_of_every_opencv_format():
    img = np.zeros((3, 5), np.uint8)
    for ext, fmt in ((".png", "png"), (".jpg", "jpeg"), (".bmp", "bmp"), (".pgm", "pnm")):
        assert header_size(fmt, _encoded(img, ext)) == (3, 5), ext
    assert header_size("pnm", b"P5\n# a comment 9 9\n7 2\n255\n") == (2, 7)
    assert header_size("jpeg", b"\xff\xd8\xff") is None


def test_any_decoder_failure_is_an_image_error(tmp_path, monkeypatch):
    """Past covtool's limit, OpenCV's own (2^30 pixels) raised cv2.error: now one ImageError."""
    import covtool.core.imageio as imageio

    monkeypatch.setattr(imageio, "MAX_IMAGE_PIXELS", 2**40)
    path = tmp_path / "huge.png"
    path.write_bytes(huge_png())
    with pytest.raises(ImageError) as err:
        read_image(path)
    assert str(err.value).startswith(f"{path}: unreadable image (error: ")
    assert "\n" not in str(err.value)


def test_skip_bad_records_a_huge_header_and_goes_on(tmp_path):
    from typer.testing import CliRunner

    from covtool.cli.app import app
    from covtool.core.manifest import read_table

    (tmp_path / "huge.png").write_bytes(huge_png())
    write_image(tmp_path / "ok.png", np.full((8, 8), 7, np.uint8))
    (tmp_path / "m.csv").write_text("id,path,pixel_size_nm\nhuge,huge.png,1\nok,ok.png,1\n")
    args = ["rescale", str(tmp_path / "m.csv"), "-d", str(tmp_path / "r"), "-o", str(tmp_path / "o.csv")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert f"{tmp_path / 'huge.png'}: its header claims 50000x50000 pixels" in res.output
    assert not (tmp_path / "r").exists()
    res = CliRunner().invoke(app, [*args, "--skip-bad"])
    assert res.exit_code == 0, res.output
    rows = read_table(tmp_path / "o.csv").rows
    assert [r.text("id") for r in rows] == ["huge", "ok"]
    assert "its header claims 50000x50000 pixels" in rows[0].text("error") and not rows[1].text("error")
    assert read_image(tmp_path / "r" / "ok.tif").tolist() == np.full((8, 8), 7, np.uint8).tolist()
