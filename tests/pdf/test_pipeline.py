from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from covtool.core.imageio import read_image
from covtool.pdf import document, pipeline
from covtool.pdf.layout import iou
from covtool.pdf.pipeline import DONE, ExtractOptions, analyze, caption_filter, extract_pdf


def test_analyze_finds_every_synthetic_figure_with_its_caption(paper):
    path, truth = paper
    doc = document.open_pdf(path)
    figures, pages = analyze(doc, ExtractOptions())
    title, doi = document.doc_title_doi(doc, pages)
    doc.close()
    assert title.startswith("Chest CT findings in synthetic patients")
    assert doi == "10.5555/covtool.synth.3"
    found = {(f.page + 1, f.caption.name): f for f in figures if f.caption}
    assert len(figures) == len(truth)          # no logo, rule, table or body mention
    for t in truth:
        f = found[(t.page, t.name)]
        assert f.caption.text == t.caption
        assert iou(f.region.bbox, t.bbox) >= 0.85, (t.name, f.region.bbox, t.bbox)
        assert f.region.kind == t.kind


def test_extract_pdf_writes_native_images_and_panels(paper, tmp_path):
    path, truth = paper
    res = extract_pdf(str(path), str(tmp_path), ExtractOptions(split_panels=True))
    assert res.error is None and res.pages == 3
    by_fig: dict[str, list[dict]] = {}
    for r in res.rows:
        by_fig.setdefault(r["figure"], []).append(r)
    for t in truth:
        assert len(by_fig[t.name]) == t.panels, t.name
    # figure 4 is one embedded JPEG: kept byte for byte
    (row4,) = by_fig["4"]
    assert row4["format"] == "jpg" and row4["panel"] == ""
    doc = document.open_pdf(path)
    xref = [i for i in document.read_page(doc[2]).images if i.width == 170][0].xref
    assert open(row4["path"], "rb").read() == doc.extract_image(xref)["image"]
    doc.close()
    # figure 3's panels are its three embedded images, top to bottom
    ys = [float(r["bbox"].split(",")[1]) for r in by_fig["3"]]
    assert ys == sorted(ys) and [r["panel"] for r in by_fig["3"]] == [1, 2, 3]
    # figure 1's panels are cut from one image along black gutters: four CT panels
    for r in by_fig["1"]:
        img = read_image(r["path"])
        assert img.shape == (r["height"], r["width"]) and 60 <= img.shape[0] <= 128
        assert np.mean(img > 12) > 0.3          # a body, not a gutter
    assert all(r["kind"] == "vector" and r["format"] == "png" for r in by_fig["2"])


def test_resume_reuses_done_pdfs_and_redo_with_force(paper, tmp_path):
    path, _ = paper
    first = extract_pdf(str(path), str(tmp_path), ExtractOptions())
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    marker = json.loads((folder / DONE).read_text())
    assert marker["pages"] == 3
    again = extract_pdf(str(path), str(tmp_path), ExtractOptions())
    assert again.reused and [r["id"] for r in again.rows] == [r["id"] for r in first.rows]
    assert [str(r["path"]) for r in again.rows] == [str(r["path"]) for r in first.rows]
    other = extract_pdf(str(path), str(tmp_path), ExtractOptions(dpi=72))
    assert other.error and "other options" in other.error
    forced = extract_pdf(str(path), str(tmp_path), ExtractOptions(dpi=72), force=True)
    assert forced.error is None and not forced.reused


def test_interrupted_folder_is_redone(paper, tmp_path):
    path, _ = paper
    extract_pdf(str(path), str(tmp_path), ExtractOptions())
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    (folder / DONE).unlink()
    res = extract_pdf(str(path), str(tmp_path), ExtractOptions())
    assert not res.reused and res.error is None and (folder / DONE).exists()


def test_a_rerun_removes_the_temporaries_a_killed_run_left_and_only_those(paper, tmp_path):
    path, _ = paper
    first = extract_pdf(str(path), str(tmp_path), ExtractOptions(split_panels=True))
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    image = Path(next(r["path"] for r in first.rows if r["format"] == "tif"))
    stale = [folder / f".{image.name}.k17tmd4l.tmp{image.suffix}", folder / ".figures.csv.a_1b2c3d.tmp.csv"]
    kept = [folder / ".notes.txt", folder / "keep.tmp", folder / f".{image.name}.k17tmd4l.tmp.xyz"]
    for f in stale + kept:
        f.write_bytes(b"")
    again = extract_pdf(str(path), str(tmp_path), ExtractOptions(split_panels=True))   # reused
    assert again.reused and not any(f.exists() for f in stale) and all(f.exists() for f in kept)
    for f in stale:
        f.write_bytes(b"")
    (folder / DONE).unlink()                                   # an interrupted attempt: redone
    redone = extract_pdf(str(path), str(tmp_path), ExtractOptions(split_panels=True))
    assert not redone.reused and not any(f.exists() for f in stale) and all(f.exists() for f in kept)
    assert [p.name for p in folder.glob("*.tif") if p.stat().st_size == 0] == []


@pytest.fixture(params=["memory", "disk"])
def read_from(request, monkeypatch):
    """Both ways a PDF is opened: from its bytes in memory, or from disk (above the limit)."""
    if request.param == "disk":
        monkeypatch.setattr(pipeline, "IN_MEMORY_LIMIT", -1)       # even an empty file
    return request.param


@pytest.mark.parametrize("content, reason", [
    (b"", "empty file"),
    (b"hello, not a pdf", "not a PDF"),
    (b"%PDF-1.7\n1 0 obj garbage", "PDF"),
    (b"%PDF-1.4\n" + bytes(range(256)) * 20, "damaged PDF (no objects found)"),   # MuPDF's reason
])
def test_bad_files_give_a_reason(tmp_path, content, reason, read_from):
    p = tmp_path / "bad.pdf"
    p.write_bytes(content)
    res = extract_pdf(str(p), str(tmp_path / "out"), ExtractOptions())
    assert res.error and reason in res.error and res.rows == []


def test_a_folder_or_a_missing_file_gives_a_reason(tmp_path):
    for p, reason in ((tmp_path, "Is a directory"), (tmp_path / "missing.pdf", "No such file or directory")):
        res = extract_pdf(str(p), str(tmp_path / "out"), ExtractOptions())
        assert res.error == reason and res.rows == []


def test_memory_and_disk_give_the_same_extraction(paper, tmp_path, monkeypatch):
    path, _ = paper
    assert pipeline.read_small(path, limit=path.stat().st_size - 1) is None
    assert pipeline.read_small(path) == path.read_bytes()
    mem = extract_pdf(str(path), str(tmp_path / "m"), ExtractOptions())
    monkeypatch.setattr(pipeline, "IN_MEMORY_LIMIT", -1)
    disk = extract_pdf(str(path), str(tmp_path / "d"), ExtractOptions())
    assert mem.error is None and len(mem.rows) >= 5
    strip = [{k: v for k, v in r.items() if k != "path"} for r in mem.rows]
    assert strip == [{k: v for k, v in r.items() if k != "path"} for r in disk.rows]
    for a, b in zip(mem.rows, disk.rows):
        assert open(a["path"], "rb").read() == open(b["path"], "rb").read()


def test_encrypted_pdf(tmp_path, read_from):
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((50, 50), "secret")
    p = tmp_path / "locked.pdf"
    doc.save(p, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="u", owner_pw="o")
    res = extract_pdf(str(p), str(tmp_path / "out"), ExtractOptions())
    assert res.error == "encrypted PDF (needs a password)"


@pytest.mark.parametrize("cut, reason", [
    (0.5, "cannot find startxref): 2 of 3 pages lost or incomplete (pages 2, 3)"),
    (0.1, "cannot find startxref): 3 of 3 pages lost or incomplete (pages 1, 2, 3)"),
    (None, "cannot find startxref): no page left"),      # cut before its page tree
])
def test_a_truncated_pdf_that_lost_pages_is_an_error_and_not_marked_done(
        paper, tmp_path, cut, reason, read_from):
    path, _ = paper
    data = path.read_bytes()
    p = tmp_path / "cut.pdf"
    p.write_bytes(data[:int(len(data) * cut)] if cut else data[:data.index(b"\n2 0 obj")])
    res = extract_pdf(str(p), str(tmp_path / "out"), ExtractOptions())
    assert res.error == f"truncated or damaged PDF ({reason}" and res.rows == []
    assert not list((tmp_path / "out").rglob(DONE))     # a later run tries it again


def test_a_repaired_pdf_whose_pages_are_whole_is_extracted_with_a_warning(paper, tmp_path, read_from):
    path, _ = paper
    p = tmp_path / "tail.pdf"
    p.write_bytes(path.read_bytes()[:-30])               # the trailer and startxref cut off
    doc = document.open_pdf(p)
    assert doc.is_repaired and doc.covtool_repaired == "cannot find startxref"
    assert document.lost_pages(doc) == []
    doc.close()
    whole = extract_pdf(str(path), str(tmp_path / "whole"), ExtractOptions())
    res = extract_pdf(str(p), str(tmp_path / "out"), ExtractOptions())
    assert res.error is None and whole.warning is None
    assert len(res.rows) == len(whole.rows) == 5
    assert res.warning.startswith("damaged PDF repaired (cannot find startxref); every page is whole")
    again = extract_pdf(str(p), str(tmp_path / "out"), ExtractOptions())
    assert again.reused and again.warning == res.warning     # said again when reused


def test_caption_filter():
    rows = [{"caption": "Figure 1. Chest CT"}, {"caption": "Figure 2. Bar chart of cases"},
            {"caption": "", "error": "empty file"}]
    assert caption_filter(rows, r"CT|computed tomography") == [rows[0], rows[2]]
    assert caption_filter(rows, r"(?i)bar chart") == rows[1:]


@pytest.mark.parametrize("rotation", [0, 90])
def test_one_recording_per_page_reads_what_the_page_calls_read(paper, tmp_path, rotation):
    """Text, placements and renderings from the page's display list are those of PyMuPDF's own
    page calls (which run the page each time), on a turned page too."""
    import pymupdf

    path, _ = paper
    doc = pymupdf.open(path)
    for page in doc:
        page.set_rotation(rotation)
    doc.save(tmp_path / "turned.pdf")
    doc = document.open_pdf(tmp_path / "turned.pdf")
    for page in doc:
        layout = document.read_page(page, with_drawings=False)
        lines = [ln for b in page.get_text("dict", flags=0)["blocks"] for ln in b.get("lines", [])
                 if any(s["text"].strip() for s in ln["spans"])]
        assert [(ln.bbox, ln.text) for ln in layout.lines] == [
            (tuple(ln["bbox"]), "".join(s["text"] for s in ln["spans"])) for ln in lines]
        assert sorted(i.bbox for i in layout.images) == sorted(
            tuple(float(v) for v in info["bbox"]) for info in page.get_image_info())
        box = (40.0, 60.0, 300.0, 400.0)
        recorded = document.render_region(page, box, 72, document.display_list(page))
        assert np.array_equal(recorded, document.render_region(page, box, 72))
    doc.close()


def test_text_and_images_clipped_away_entirely_are_not_read(tmp_path):
    """What the page hides behind an empty clip is not read: MuPDF's display list leaves out
    what no clip lets through (PyMuPDF's Page.get_text, which runs the page, still reads it)."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 100), "Figure 1. Shown", fontsize=10)
    xref = page.get_contents()[0]
    hidden = b"\nq 0 0 0 0 re W n BT /helv 10 Tf 72 200 Td (Figure 2. Hidden) Tj ET Q\n"
    doc.update_stream(xref, doc.xref_stream(xref) + hidden)
    doc.save(tmp_path / "clip.pdf")
    doc = document.open_pdf(tmp_path / "clip.pdf")
    assert [ln.text for ln in document.read_page(doc[0]).lines] == ["Figure 1. Shown"]
    doc.close()


def test_doi_from_the_text_of_the_first_two_pages_as_read(tmp_path):
    import pymupdf

    for where, expect in ((0, "10.1234/first.page"), (1, "10.1234/second.page"), (2, "")):
        doc = pymupdf.open()
        for k in range(3):
            page = doc.new_page()
            page.insert_text((72, 72), "A plain page of body text without any caption on it.")
            if k == where:
                page.insert_text((72, 100), f"https://doi.org/{expect or '10.1234/third.page'}.")
        doc.set_metadata({})
        p = tmp_path / f"doi{where}.pdf"
        doc.save(p)
        doc = document.open_pdf(p)
        _, pages = analyze(doc, ExtractOptions())
        assert [pg.lines_read for pg in pages] == [True, False, False]     # page 2: plain text only
        assert document.doc_title_doi(doc, pages)[1] == expect


def test_doi_on_a_page_whose_lines_are_read_late(tmp_path):
    import pymupdf

    doc = pymupdf.open()
    for _ in range(2):
        page = doc.new_page()
        page.insert_text((72, 72), "A plain page of body text without any caption on it.")
    page.insert_text((72, 100), "doi:10.1234/late.read")
    rng = np.random.default_rng(0)            # an uncaptioned raster figure: its page's lines are read
    page.insert_image(pymupdf.Rect(72, 200, 272, 400), pixmap=pymupdf.Pixmap(
        pymupdf.csGRAY, 64, 64, rng.integers(0, 256, 64 * 64, dtype=np.uint8).tobytes(), False))
    p = tmp_path / "late.pdf"
    doc.save(p)
    doc = document.open_pdf(p)
    _, pages = analyze(doc, ExtractOptions())
    assert pages[1].lines_read and any("10.1234" in ln.text for ln in pages[1].lines)
    assert document.doc_title_doi(doc, pages)[1] == "10.1234/late.read"


def test_options_and_caption_patterns_are_checked_naming_the_parameter():
    from covtool.core.errors import ParameterError
    from covtool.pdf.pipeline import caption_pattern

    for field, value, message in (("uncaptioned", "some", "must be raster, all or none, got 'some'"),
                                  ("flate", "gif", "must be keep or png, got 'gif'")):
        with pytest.raises(ParameterError) as err:
            ExtractOptions(**{field: value})
        assert err.value.param == field and str(err.value) == f"{field}: {message}"
    with pytest.raises(ParameterError) as err:
        caption_filter([{"caption": "Figure 1"}], "(")
    assert err.value.param == "caption_match" and "'(' is not a valid regex" in str(err.value)
    assert caption_pattern(None) is None and caption_pattern("CT").search("a CT scan")


def _sideways_pdf(path: Path, turn: int, page_rotation: int = 0) -> None:
    """A portrait page whose content is a landscape page set sideways (text written up for
    ``turn`` 1, down for 3): a figure, its caption below it and body text, in the landscape
    frame; ``page_rotation`` sets /Rotate so that a viewer shows it upright."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)

    def box(x0, y0, x1, y1):          # a box of the 842 x 595 landscape frame -> the page's
        if turn == 1:
            return pymupdf.Rect(y0, 842 - x1, y1, 842 - x0)
        return pymupdf.Rect(595 - y1, x0, 595 - y0, x1)

    rotate = 90 if turn == 1 else 270
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 120, 80), False)
    pix.clear_with(90)
    page.insert_image(box(100, 80, 500, 330), pixmap=pix, rotate=rotate)
    page.insert_textbox(box(100, 340, 740, 380), "Figure 1. A landscape figure set sideways on a "
                        "portrait page, with its caption below it.", fontsize=10, rotate=rotate)
    page.insert_textbox(box(100, 400, 740, 560), "Body text of the page runs on below the caption "
                        "in lines long enough to be body text. " * 4, fontsize=10, rotate=rotate)
    if page_rotation:
        page.set_rotation(page_rotation)
    doc.save(path)


@pytest.mark.parametrize("turn, page_rotation", [(1, 0), (3, 0), (1, 90)])
def test_a_landscape_page_set_sideways_pairs_its_caption(tmp_path, turn, page_rotation):
    path = tmp_path / "land.pdf"
    _sideways_pdf(path, turn, page_rotation)
    res = extract_pdf(str(path), str(tmp_path / "out"), ExtractOptions())
    assert res.error is None
    (row,) = res.rows
    assert row["figure"] == "1" and row["caption"].startswith("Figure 1. A landscape figure")
    # the box is the image's, in the page's own (unturned) coordinates
    x0, y0, x1, y1 = (float(v) for v in row["bbox"].split(","))
    assert x1 - x0 == pytest.approx(250, abs=1) and y1 - y0 == pytest.approx(375, abs=1)


def _stencil_pdf(path: Path, filt: str) -> np.ndarray:
    """A page with one 1-bit stencil mask image (/ImageMask true, Flate or CCITT G4, painted
    black) and its caption; returns the painted pixels (True where the page is black)."""
    import io

    import pymupdf
    from PIL import Image

    w, h = 200, 150
    ink = np.zeros((h, w), bool)
    ink[20:130, 30:170] = True
    ink[60:90, :] = False
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 420), "Figure 1. A stencil mask drawn in black.", fontsize=10)
    xref = doc.get_new_xref()
    doc.update_object(xref, f"<< /Type /XObject /Subtype /Image /Width {w} /Height {h} "
                            "/ImageMask true /BitsPerComponent 1 /Decode [1 0] >>")
    if filt == "flate":
        doc.update_stream(xref, np.packbits(ink, axis=1).tobytes(), compress=True)
    else:
        buf = io.BytesIO()
        Image.fromarray(~ink).save(buf, format="TIFF", compression="group4")
        tif = Image.open(io.BytesIO(buf.getvalue()))
        offset, count = tif.tag_v2[273][0], tif.tag_v2[279][0]
        doc.update_stream(xref, buf.getvalue()[offset:offset + count], compress=False)
        doc.xref_set_key(xref, "Filter", "/CCITTFaxDecode")
        doc.xref_set_key(xref, "DecodeParms", f"<< /K -1 /Columns {w} /Rows {h} >>")
    resources = int(doc.xref_get_key(page.xref, "Resources")[1].split()[0])
    doc.xref_set_key(resources, "XObject", f"<< /Im9 {xref} 0 R >>")
    content = doc.get_new_xref()
    doc.update_object(content, "<< >>")
    doc.update_stream(content, b"q 0 0 0 rg 300 0 0 225 72 440 cm /Im9 Do Q")
    old = doc.xref_get_key(page.xref, "Contents")[1].strip("[]")
    doc.xref_set_key(page.xref, "Contents", f"[{old} {content} 0 R]")
    doc.save(path)
    return ink


@pytest.mark.parametrize("filt", ["flate", "ccitt"])
def test_a_stencil_mask_image_is_written_as_ink_on_white(tmp_path, filt):
    path = tmp_path / "stencil.pdf"
    ink = _stencil_pdf(path, filt)
    res = extract_pdf(str(path), str(tmp_path / "out"), ExtractOptions())
    (row,) = res.rows
    img = read_image(row["path"])
    assert img.shape == ink.shape and row["format"] == "png"
    assert np.array_equal(img < 128, ink)       # black where painted, not a negative


def test_a_small_uncaptioned_badge_is_not_listed_and_a_scheme_is_not_a_figure(tmp_path):
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 60, 60), False)
    pix.clear_with(120)
    page.insert_image(pymupdf.Rect(40, 700, 90, 750), pixmap=pix)          # a 50 pt badge
    big = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 200, 100), False)
    big.clear_with(60)
    page.insert_image(pymupdf.Rect(72, 100, 472, 300), pixmap=big)         # a scheme's picture
    page.insert_text((72, 320), "Scheme 1. Synthetic route to the compound.", fontsize=10)
    uncaptioned = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 150, 100), False)
    uncaptioned.clear_with(200)
    page.insert_image(pymupdf.Rect(72, 400, 372, 600), pixmap=uncaptioned)  # a figure, no caption
    doc.save(tmp_path / "p.pdf")
    res = extract_pdf(str(tmp_path / "p.pdf"), str(tmp_path / "out"), ExtractOptions())
    assert [(r["figure"], r["bbox"]) for r in res.rows] == [("", "72.0,400.0,372.0,600.0")]


def test_an_inline_image_figure_is_found_and_rendered(tmp_path):
    """A figure drawn as an inline image (BI ... ID ... EI, no XObject: older writers do this
    for whole figures) is a figure; with no stored stream to keep it is rendered."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 420), "Figure 1. An inline image.", fontsize=10)
    pixels = bytes(range(0, 256, 16)) * 4          # 8 x 8 grey ramp, 8 bits
    content = doc.get_new_xref()
    doc.update_object(content, "<< >>")
    doc.update_stream(content, b"q 200 0 0 200 72 440 cm BI /W 8 /H 8 /CS /G /BPC 8 ID "
                      + pixels + b" EI Q")
    old = doc.xref_get_key(page.xref, "Contents")[1].strip("[]")
    doc.xref_set_key(page.xref, "Contents", f"[{old} {content} 0 R]")
    doc.save(tmp_path / "inline.pdf")
    res = extract_pdf(str(tmp_path / "inline.pdf"), str(tmp_path / "out"), ExtractOptions())
    (row,) = res.rows
    assert row["figure"] == "1" and row["format"] == "png" and row["kind"] == "raster"
    assert row["bbox"] == "72.0,202.0,272.0,402.0"
    img = read_image(row["path"])
    # the 8 x 8 pixels as drawn: rows 0..112 and 128..240 in steps of 16, grey
    expect = np.frombuffer(pixels, np.uint8).reshape(8, 8)
    h, w = img.shape
    centres = img[(np.arange(8) * h + h // 2) // 8][:, (np.arange(8) * w + w // 2) // 8]
    assert img.ndim == 2 and np.abs(centres.astype(int) - expect).max() <= 2
