"""Flate images kept as their stored stream (``document.stored_flate``), and when they are not."""

from __future__ import annotations

import io
import zlib

import cv2
import numpy as np
import pymupdf
import pytest
import tifffile

from covtool.pdf import document
from covtool.pdf.pipeline import ExtractOptions, extract_pdf
from covtool.synth.pdf import insert_pdftex_image, png_idat


def _image_xobject(tmp_path, stream: bytes, keys: dict[str, str], name: str = "img.pdf"):
    """A one-page PDF whose one image XObject has exactly ``stream`` and ``keys``."""
    doc = pymupdf.open()
    page = doc.new_page()
    placeholder = np.zeros((4, 4), np.uint8)
    xref = page.insert_image(pymupdf.Rect(50, 50, 250, 250), stream=cv2.imencode(".png", placeholder)[1].tobytes())
    doc.update_stream(xref, stream, compress=False)
    for key in ("SMask", "Decode", "DecodeParms", "Mask"):
        doc.xref_set_key(xref, key, "null")
    for key, value in keys.items():
        doc.xref_set_key(xref, key, value)
    doc.save(tmp_path / name)
    doc.close()
    doc = pymupdf.open(tmp_path / name)
    return doc, xref


def _rng_image(shape, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)
    img[: shape[0] // 2] //= 7           # some structure, so it compresses
    return img


@pytest.mark.parametrize("colours", [1, 3])
def test_plain_flate_rows_become_a_deflate_tiff_holding_the_stored_bytes(tmp_path, colours):
    shape = (37, 53) if colours == 1 else (37, 53, 3)
    img = _rng_image(shape)
    stream = zlib.compress(img.tobytes())
    doc, xref = _image_xobject(tmp_path, stream, {
        "Filter": "/FlateDecode", "Width": "53", "Height": "37", "BitsPerComponent": "8",
        "ColorSpace": "/DeviceGray" if colours == 1 else "/DeviceRGB"})
    data, ext = document.stored_flate(doc, xref)
    assert ext == "tif" and stream in data                 # the stream, not a re-encoding
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages[0]
        assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        assert np.array_equal(page.asarray(), img)
    # what MuPDF decodes is what the file holds
    _, _, decoded = document.native_image(doc, xref, flate="png")
    assert np.array_equal(decoded, img)


def test_tiff_predictor_streams_keep_their_predictor(tmp_path):
    img = _rng_image((21, 34), seed=6)
    diff = img.copy()
    diff[:, 1:] = img[:, 1:] - img[:, :-1]                  # horizontal differences, mod 256
    doc, xref = _image_xobject(tmp_path, zlib.compress(diff.tobytes()), {
        "Filter": "/FlateDecode", "Width": "34", "Height": "21", "BitsPerComponent": "8",
        "ColorSpace": "/DeviceGray", "DecodeParms": "<</Predictor 2/Colors 1/BitsPerComponent 8/Columns 34>>"})
    data, ext = document.stored_flate(doc, xref)
    assert ext == "tif" and np.array_equal(tifffile.imread(io.BytesIO(data)), img)
    _, _, decoded = document.native_image(doc, xref, flate="png")
    assert np.array_equal(decoded, img)


def test_sixteen_bit_grey_stays_sixteen_bit(tmp_path):
    img = _rng_image((20, 31), np.uint16, seed=1)
    stream = zlib.compress(img.astype(">u2").tobytes())    # PDF samples are big-endian
    doc, xref = _image_xobject(tmp_path, stream, {
        "Filter": "/FlateDecode", "Width": "31", "Height": "20", "BitsPerComponent": "16",
        "ColorSpace": "/DeviceGray"})
    data, ext = document.stored_flate(doc, xref)
    assert ext == "tif"
    back = tifffile.imread(io.BytesIO(data))
    assert back.dtype.itemsize == 2 and np.array_equal(back.astype(np.uint16), img)


@pytest.mark.parametrize("colours", [1, 3])
def test_png_predictor_streams_become_a_png_around_the_same_idat(tmp_path, colours):
    shape = (29, 41) if colours == 1 else (29, 41, 3)
    img = _rng_image(shape, seed=2)          # BGR for colour, as OpenCV holds it
    doc = pymupdf.open()
    xref = insert_pdftex_image(doc.new_page(), (50, 50, 250, 250), img)
    doc.save(tmp_path / "tex.pdf")
    doc = pymupdf.open(tmp_path / "tex.pdf")
    data, ext = document.stored_flate(doc, xref)
    assert ext == "png" and png_idat(img) in data
    assert np.array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), img)
    _, _, decoded = document.native_image(doc, xref, flate="png")
    rgb = img if colours == 1 else img[..., ::-1]
    assert np.array_equal(decoded, rgb)


def test_icc_profile_goes_with_the_image(tmp_path):
    doc = pymupdf.open()
    page = doc.new_page()
    img = _rng_image((16, 16, 3), seed=3)
    xref = page.insert_image(pymupdf.Rect(50, 50, 150, 150), stream=cv2.imencode(".png", img)[1].tobytes())
    doc.save(tmp_path / "icc.pdf", deflate=True)
    doc = pymupdf.open(tmp_path / "icc.pdf")
    kind, value = doc.xref_get_key(xref, "ColorSpace")
    if "ICCBased" not in value and kind != "xref":
        pytest.skip("this MuPDF stores PNGs without an ICC profile")
    data, ext = document.stored_flate(doc, xref)
    assert ext == "tif"
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        profile = tif.pages[0].tags["InterColorProfile"].value
        assert np.array_equal(tif.pages[0].asarray(), img[..., ::-1])
    assert profile[36:40] == b"acsp" and len(profile) > 128          # an ICC profile's signature


@pytest.mark.parametrize("keys", [
    {"SMask": "{smask}"},                                 # transparency: decoded, alpha applied
    {"Decode": "[1 0]"},                                  # inverted: decoded
    {"BitsPerComponent": "4"},                            # packed samples: decoded
    {"ColorSpace": "/DeviceCMYK"},                        # CMYK: decoded to RGB
    {"DecodeParms": "<</Predictor 15/Colors 1/BitsPerComponent 8/Columns 7>>"},   # does not fit
    {"Filter": "[/ASCIIHexDecode /FlateDecode]"},         # two filters
    {"ColorSpace": "/DeviceRGB", "DecodeParms": "<</Predictor 2/Columns 18>>"},   # predictor rows of 1 colour
])
def test_images_a_file_cannot_hold_as_stored_are_decoded(tmp_path, keys):
    img = _rng_image((12, 18), seed=4)
    base = {"Filter": "/FlateDecode", "Width": "18", "Height": "12", "BitsPerComponent": "8",
            "ColorSpace": "/DeviceGray"}
    doc0 = pymupdf.open()
    page = doc0.new_page()
    mask_xref = page.insert_image(pymupdf.Rect(300, 300, 320, 320), stream=cv2.imencode(".png", img)[1].tobytes())
    doc0.save(tmp_path / "base.pdf")
    keys = {k: v.format(smask=f"{mask_xref} 0 R") for k, v in keys.items()}
    doc, xref = _image_xobject(tmp_path, zlib.compress(img.tobytes()), {**base, **keys})
    assert document.stored_flate(doc, xref) is None


def test_extract_keeps_flate_streams_unless_asked_for_png(paper, tmp_path):
    path, _ = paper
    kept = extract_pdf(str(path), str(tmp_path / "keep"), ExtractOptions())
    png = extract_pdf(str(path), str(tmp_path / "png"), ExtractOptions(flate="png"))
    by_fig = {r["figure"]: r for r in kept.rows}
    assert by_fig["1"]["format"] == "tif"          # PyMuPDF-stored rows: a Deflate TIFF
    assert by_fig["5"]["format"] == "png"          # pdfTeX-stored PNG rows: a PNG
    assert by_fig["4"]["format"] == "jpg"
    for a, b in zip(kept.rows, png.rows):
        assert (a["id"], a["width"], a["height"]) == (b["id"], b["width"], b["height"])
        assert b["format"] in ("png", "jpg")
        assert np.array_equal(document.decode_bytes(open(a["path"], "rb").read()),
                              document.decode_bytes(open(b["path"], "rb").read())), a["id"]


def test_grey_if_grey_is_exact():
    rng = np.random.default_rng(5)
    grey = rng.integers(0, 256, (9, 11), dtype=np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    out = document.grey_if_grey(rgb)
    assert out.shape == (9, 11) and out.flags.c_contiguous and np.array_equal(out, grey)
    almost = rgb.copy()
    almost[4, 7, 2] ^= 1                        # one sample off grey: stays colour
    assert document.grey_if_grey(almost) is almost
    assert document.grey_if_grey(grey) is grey


def test_grey_renderings_are_written_grey(paper, tmp_path):
    path, _ = paper
    rows = {r["figure"]: r for r in extract_pdf(str(path), str(tmp_path), ExtractOptions()).rows}
    ct = cv2.imread(rows["3"]["path"], cv2.IMREAD_UNCHANGED)        # three CT images, rendered
    chart = cv2.imread(rows["2"]["path"], cv2.IMREAD_UNCHANGED)     # a colour bar chart
    assert ct.ndim == 2 and chart.ndim == 3
    doc = pymupdf.open(path)
    box = tuple(float(v) for v in rows["3"]["bbox"].split(","))
    pix = doc[int(rows["3"]["page"]) - 1].get_pixmap(clip=pymupdf.Rect(*box), dpi=150, alpha=False)
    rgb = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width, 3)
    assert np.array_equal(np.repeat(ct[..., None], 3, axis=2), rgb)


def _placement_args(doc, page):
    by_size: dict = {}
    for item in page.get_images(full=True):
        by_size.setdefault((item[2], item[3]), []).append(item[0])
    digests = {x: str(x) for xs in by_size.values() for x in xs}
    return doc, document.display_list(page), by_size, digests


def test_same_size_images_are_told_apart_by_drawing_order_as_by_their_pixels(paper):
    path, _ = paper
    doc = pymupdf.open(path)
    page = doc[1]                 # figure 3: three 128x128 CT images, one above the other
    args = _placement_args(doc, page)
    assert any(len(v) == 3 for v in args[2].values())
    drawn = document.drawn_images(page)
    assert drawn is not None and len(drawn) == len(page.get_image_info())
    by_order = document._placements(*args, drawn=lambda: drawn)
    by_pixels = document._placements(*args)
    assert by_order == by_pixels and len(by_order) == 4
    # a content stream that does not account for every placement: pixels decide
    assert document._placements(*args, drawn=lambda: drawn[:-1]) == by_pixels


def test_images_inside_a_form_xobject_are_not_ordered_from_the_page(paper, tmp_path):
    path, _ = paper
    src = pymupdf.open(path)
    doc = pymupdf.open()
    page = doc.new_page()
    page.show_pdf_page(page.rect, src, 1)           # page 2 as a form XObject
    assert document.drawn_images(page) is None
    args = _placement_args(doc, page)
    placed = document._placements(*args, drawn=lambda: document.drawn_images(page))
    assert len(placed) == 4                         # found by their pixels instead


def test_an_inline_image_leaves_the_order_to_pixels():
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(pymupdf.Rect(0, 0, 50, 50), pixmap=pymupdf.Pixmap(pymupdf.csGRAY, pymupdf.IRect(0, 0, 4, 4)))
    xref = page.get_contents()[0]
    plain = doc.xref_stream(xref)
    assert document.drawn_images(page) is not None
    for text in (b"(BI) Tj", b"/BIG gs", b"ABI 1"):          # "BI" that is not the operator
        doc.update_stream(xref, plain + b"\n" + text)
        assert document.drawn_images(page) is not None, text
    for inline in (b"BI /W 1 /H 1 /CS /G /BPC 8 ID \x80 EI", b"q]BI/W 1 ID", b"BI\n/W 1"):
        doc.update_stream(xref, plain + b"\n" + inline)
        assert document.drawn_images(page) is None, inline


def test_image_blocks_are_extractimginfo_s_boxes_and_sizes(paper):
    path, _ = paper
    doc = pymupdf.open(path)
    seen = 0
    for page in doc:
        tp = pymupdf.TextPage(document.display_list(page).get_textpage(flags=pymupdf.TEXT_PRESERVE_IMAGES))
        want = [(tuple(i["bbox"]), (i["width"], i["height"])) for i in tp.extractIMGINFO()]
        assert document.image_blocks(tp) == want
        seen += len(want)
    assert seen >= 8


def test_cluster_boxes_is_pymupdfs_cluster_drawings_box_for_box():
    """The vectorised clustering gives PyMuPDF's own ``cluster_drawings`` result exactly, on
    pages of random lines and rectangles (near, touching, nested, duplicated, off the page)."""
    import pymupdf

    from covtool.pdf.document import cluster_boxes

    rng = np.random.default_rng(7)
    for trial in range(12):
        doc = pymupdf.open()
        page = doc.new_page(width=595, height=842)
        for _ in range(int(rng.integers(1, 120))):
            x, y = rng.uniform(-20, 600), rng.uniform(-20, 850)
            w, h = rng.choice([0.0, rng.uniform(0.5, 6), rng.uniform(5, 80)], 2)
            page.draw_rect(pymupdf.Rect(x, y, x + w, y + h), width=0.5)
            if rng.random() < 0.1:
                page.draw_rect(pymupdf.Rect(x, y, x + w, y + h), width=0.5)   # a duplicate
        paths = page.get_cdrawings(extended=False)
        theirs = [tuple(r) for r in page.cluster_drawings(
            drawings=[{"rect": pymupdf.Rect(p["rect"])} for p in paths])]
        ours = cluster_boxes(np.array([p["rect"] for p in paths], dtype=np.float64),
                             tuple(page.rect), 3.0, 3.0)
        assert ours == theirs, trial
        assert theirs    # the pages are not trivially empty


def _random_paths_page(rng, doc=None):
    """A page of random stroked and filled rectangles, lines and curves (one subpath each)."""
    doc = pymupdf.open() if doc is None else doc
    page = doc.new_page(width=595, height=842)
    for _ in range(int(rng.integers(5, 80))):
        x, y = rng.uniform(-20, 600), rng.uniform(-20, 850)
        w, h = rng.uniform(0, 80, 2)
        kind = rng.integers(0, 3)
        fill = (0.2, 0.4, 0.6) if rng.random() < 0.5 else None
        if kind == 0:
            page.draw_rect(pymupdf.Rect(x, y, x + w, y + h), width=0.5, fill=fill)
        elif kind == 1:
            page.draw_line((x, y), (x + w, y + h), width=float(rng.uniform(0.1, 3)))
        else:
            page.draw_bezier((x, y), (x + w, y), (x, y + h), (x + w, y + h), fill=fill)
    return doc, page


def test_path_boxes_are_get_drawings_rects_for_single_subpath_paths():
    """Played from the display list, each path's box is the ``rect`` ``get_cdrawings`` gives it
    (on pages where every path is one subpath, the case where the two agree by definition). A
    path both filled and stroked is one ``get_cdrawings`` entry and two boxes here: the same box
    twice, which clusters the same."""
    rng = np.random.default_rng(11)
    for trial in range(8):
        _, page = _random_paths_page(rng)
        theirs = {tuple(round(v, 3) for v in p["rect"]) for p in page.get_cdrawings(extended=False)}
        ours = {tuple(round(v, 3) for v in b) for b in document.path_boxes(document.display_list(page))}
        assert ours == theirs, trial
        assert len(ours) >= 5


def test_path_boxes_span_every_subpath_and_skip_clips_and_text():
    doc = pymupdf.open()
    page = doc.new_page(width=200, height=200)
    # one stroked path of two subpaths: PyMuPDF's rect leaves out the second one's start point
    # (0, 150); a clip path and text are not drawn paths
    stream = (b"q 20 20 100 100 re W n 0 0 m 180 180 l S Q "
              b"10 10 m 50 10 l 0 150 m 60 160 l S "
              b"BT /Helv 12 Tf 100 100 Td (x) Tj ET")
    page.insert_text((100, 40), "text")
    xref = page.get_contents()[0]
    doc.update_stream(xref, stream)
    boxes = sorted(tuple(round(v, 3) for v in b) for b in document.path_boxes(document.display_list(page)))
    # y is down in MuPDF's page space (y' = 200 - y)
    assert boxes == [(0.0, 20.0, 180.0, 200.0), (0.0, 40.0, 60.0, 190.0)]
    theirs = sorted(tuple(round(v, 3) for v in p["rect"]) for p in page.get_cdrawings(extended=False))
    assert theirs == [(0.0, 20.0, 180.0, 200.0), (10.0, 40.0, 60.0, 190.0)]  # the difference named


def test_drawings_of_a_rotated_page_are_clustered_on_the_whole_page():
    """On a /Rotate 90 page the drawings are in the unrotated frame (portrait): all of them count,
    not only those inside the shown (landscape) page's height."""
    doc = pymupdf.open()
    page = doc.new_page(width=300, height=600)
    page.draw_rect(pymupdf.Rect(50, 50, 250, 150), width=1)
    page.draw_rect(pymupdf.Rect(50, 400, 250, 550), width=1)      # below y = 300
    page.set_rotation(90)
    boxes = document.read_drawings(page)
    assert len(boxes) == 2
    assert max(b[3] for b in boxes) > 540


def test_a_ctrl_c_while_mupdf_calls_the_path_device_is_not_lost(monkeypatch):
    """Python runs the SIGINT handler in the next Python code of the main thread, which may be
    the path device's method that MuPDF calls from C++; SWIG dropped the KeyboardInterrupt there
    (printed it and ran on), and extract went on as if never interrupted."""
    import os
    import signal

    from pymupdf import mupdf

    rng = np.random.default_rng(5)
    _, page = _random_paths_page(rng)
    recording = document.display_list(page)
    assert document.path_boxes(recording)
    real = mupdf.ll_fz_bound_path
    calls = []

    def interrupted_here(*args):   # Ctrl-C arriving while MuPDF runs the device
        if not calls:
            os.kill(os.getpid(), signal.SIGINT)
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(mupdf, "ll_fz_bound_path", interrupted_here)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            document.path_boxes(recording)
    finally:
        signal.signal(signal.SIGINT, old)
    assert signal.getsignal(signal.SIGINT) is old
    assert len(calls) > 1            # the run went on to its end, then the interrupt was raised
