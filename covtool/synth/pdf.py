"""Synthetic papers (PDF) with known figures and captions, for the tests, the demo and the
benchmark of ``covtool extract``.

Each paper has a single-column first page and two-column later pages, a logo and a footer rule
repeated on every page, raster figures (CT panels from :mod:`covtool.synth.ct`), a vector bar
chart, a figure made of separate images and one image holding a grid of panels (black gutters,
as CT panels often are, and white ones), captions below and above their figures (one wrapped
with a hyphenated word), a "Table 1" caption over a ruled table, and a body-text line starting
"Figure 2 shows" that is not a caption.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from covtool.core.atomic import atomic_path

PAGE_W, PAGE_H = 612.0, 792.0        # US letter, points
MARGIN = 54.0
GUTTER = 18.0
BODY_SIZE = 9.5
CAPTION_SIZE = 8.5
LOREM = ("Patients with confirmed infection underwent chest computed tomography on admission and "
         "the images were read by two radiologists who agreed on the findings in every case. "
         "Ground-glass opacities were the most common pattern and were bilateral in most patients, "
         "with a peripheral and posterior distribution that changed over the course of the disease. ")


@dataclass
class TruthFigure:
    """One figure as the generator placed it. ``page`` is 1-based; ``bbox`` in points."""

    name: str
    page: int
    bbox: tuple[float, float, float, float]
    caption: str
    kind: str
    panels: int
    caption_pos: str

    def as_dict(self) -> dict:
        return asdict(self)


def ct_panel(rng: np.random.Generator, size: int = 128, covid: bool = True) -> np.ndarray:
    """A CT-like slice (size, size) uint8 on black, windowed for display."""
    from covtool.synth.ct import draw_patient, render_slice

    spec = draw_patient(rng, 20, covid)
    img, _ = render_slice(spec, 10, rng)
    step = max(1, img.shape[0] // size)
    small = img[::step, ::step][:size, :size].astype(np.float32)
    out = np.clip((small - 0.0) / 1600.0 * 255.0, 0, 255).astype(np.uint8)
    out[out < 12] = 0          # air is black: the gutters of a black-background grid stay clean
    return out


def grid_image(panels: list[np.ndarray], cols: int, gutter: int, background: int) -> np.ndarray:
    """Panels (equal size) tiled in a grid with gutters of ``background`` grey (uint8)."""
    h, w = panels[0].shape[:2]
    rows = (len(panels) + cols - 1) // cols
    out = np.full((rows * h + (rows - 1) * gutter, cols * w + (cols - 1) * gutter), background, np.uint8)
    for k, p in enumerate(panels):
        r, c = divmod(k, cols)
        out[r * (h + gutter): r * (h + gutter) + h, c * (w + gutter): c * (w + gutter) + w] = p
    return out


def _encode(img: np.ndarray, fmt: str) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", img,
                           [cv2.IMWRITE_JPEG_QUALITY, 92] if fmt == "jpeg" else [])
    if not ok:
        raise ValueError(f"cannot encode {fmt}")
    return buf.tobytes()


def png_idat(img: np.ndarray) -> bytes:
    """The compressed, filtered rows of ``img`` as a PNG holds them (its IDAT chunks joined)."""
    import struct

    data, at, idat = _encode(img, "png"), 8, []
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        if data[at + 4:at + 8] == b"IDAT":
            idat.append(data[at + 8:at + 8 + length])
        at += 12 + length
    return b"".join(idat)


def insert_pdftex_image(page, rect, img: np.ndarray) -> int:
    """Place ``img`` (uint8 grey or BGR) the way pdfTeX includes a PNG file: the PNG's IDAT data
    is the XObject's stream, FlateDecode with ``/Predictor 15`` (PyMuPDF's own ``insert_image``
    would decode the PNG and store plain Flate rows). Returns the image's xref."""
    import pymupdf

    doc = page.parent
    xref = page.insert_image(pymupdf.Rect(*rect), stream=_encode(img, "png"))
    colours = 1 if img.ndim == 2 else 3
    doc.update_stream(xref, png_idat(img), compress=False)     # a PNG of BGR holds RGB rows
    for key, value in (("Filter", "/FlateDecode"), ("ColorSpace", "/DeviceGray" if colours == 1 else "/DeviceRGB"),
                       ("DecodeParms", f"<</Predictor 15/Colors {colours}/BitsPerComponent 8/Columns {img.shape[1]}>>"),
                       ("SMask", "null"), ("Decode", "null")):
        doc.xref_set_key(xref, key, value)
    return xref


def _logo() -> bytes:
    img = np.full((24, 80, 3), 255, np.uint8)
    img[4:20, 4:20] = (200, 30, 30)
    img[8:16, 26:76] = (40, 40, 160)
    return _encode(img, "png")


class _Writer:
    """Text set line by line (so captions keep a known wrap and hyphenation)."""

    def __init__(self, page):
        self.page = page

    def lines(self, x: float, y: float, width: float, text: str, size: float = BODY_SIZE,
              font: str = "helv", lead: float = 1.25, max_lines: int | None = None) -> float:
        import pymupdf

        words, line, out = text.split(), "", []
        for w in words:
            trial = (line + " " + w).strip()
            if pymupdf.get_text_length(trial, fontname=font, fontsize=size) > width and line:
                out.append(line)
                line = w
            else:
                line = trial
        if line:
            out.append(line)
        if max_lines is not None:
            out = out[:max_lines]
        for ln in out:
            y += size * lead
            self.page.insert_text((x, y), ln, fontsize=size, fontname=font)
        return y + size * 0.4

    def raw(self, x: float, y: float, rows: list[str], size: float, font: str = "helv") -> float:
        for ln in rows:
            y += size * 1.25
            self.page.insert_text((x, y), ln, fontsize=size, fontname=font)
        return y + size * 0.4


def _caption(w: _Writer, x: float, y: float, width: float, label: str, text: str) -> tuple[float, str]:
    """A caption: bold label, then the text; returns the new y and the full caption text."""
    import pymupdf

    label_w = pymupdf.get_text_length(label + " ", fontname="hebo", fontsize=CAPTION_SIZE)
    w.page.insert_text((x, y + CAPTION_SIZE * 1.25), label, fontsize=CAPTION_SIZE, fontname="hebo")
    # first line continues after the label on the same baseline
    words = text.split()
    first = ""
    while words and pymupdf.get_text_length(first + " " + words[0], fontname="helv",
                                            fontsize=CAPTION_SIZE) < width - label_w:
        first = (first + " " + words.pop(0)).strip()
    w.page.insert_text((x + label_w, y + CAPTION_SIZE * 1.25), first, fontsize=CAPTION_SIZE, fontname="helv")
    y = w.lines(x, y + CAPTION_SIZE * 1.25, width, " ".join(words), size=CAPTION_SIZE) if words else y + CAPTION_SIZE * 1.65
    return y, f"{label} {text}"


def _furniture(page, number: int, logo: bytes) -> None:
    import pymupdf

    page.insert_image(pymupdf.Rect(PAGE_W - MARGIN - 60, 22, PAGE_W - MARGIN, 40), stream=logo)
    page.draw_line((MARGIN, PAGE_H - 40), (PAGE_W - MARGIN, PAGE_H - 40), color=(0.5, 0.5, 0.5), width=0.5)
    page.insert_text((PAGE_W / 2 - 4, PAGE_H - 28), str(number), fontsize=8, fontname="helv")


def _bar_chart(page, w: _Writer, rect: tuple[float, float, float, float], rng: np.random.Generator) -> tuple:
    """A vector bar chart with axes and tick labels; returns its bbox (labels included)."""
    x0, y0, x1, y1 = rect
    ax0, ay1 = x0 + 22, y1 - 14
    page.draw_line((ax0, y0 + 4), (ax0, ay1), color=(0, 0, 0), width=0.8)
    page.draw_line((ax0, ay1), (x1, ay1), color=(0, 0, 0), width=0.8)
    n = 6
    bw = (x1 - ax0 - 8) / n
    for k in range(n):
        hgt = float(rng.uniform(0.2, 0.95)) * (ay1 - y0 - 8)
        bx = ax0 + 4 + k * bw
        page.draw_rect((bx + 2, ay1 - hgt, bx + bw - 2, ay1), color=None, fill=(0.2, 0.4, 0.7))
        page.insert_text((bx + bw / 2 - 3, y1 - 3), str(k + 1), fontsize=7, fontname="helv")
    for k, v in enumerate(("0", "50", "100")):
        yy = ay1 - k * (ay1 - y0 - 8) / 2
        page.insert_text((x0 + 2, yy + 2), v, fontsize=7, fontname="helv")
    return (x0 + 2, y0 + 4, x1, y1)


def make_paper(path: str | os.PathLike, seed: int = 0, force: bool = False) -> list[TruthFigure]:
    """Write a 3-page synthetic paper to ``path``; return its figures' ground truth.

    Figures (1-based pages): 1 a 2x2 grid of CT panels in one PNG on black gutters (page 1,
    caption below, wrapped with a hyphenated word); 2 a vector bar chart (page 2, left column,
    caption below); 3 three separate CT images stacked as panels (page 2, right column, caption
    above); 4 one JPEG CT image (page 3, right column, "Fig. 4." below); 5 three panels on white
    gutters in one image, stored as pdfTeX stores a PNG (page 3, full width, "FIGURE 5:" below).
    Table 1 (page 3) is not a figure.
    """
    import pymupdf

    rng = np.random.default_rng(seed)
    doc = pymupdf.open()
    doc.set_metadata({"title": "", "subject": ""})   # like many preprints: title only on the page
    logo = _logo()
    truth: list[TruthFigure] = []
    col_w = (PAGE_W - 2 * MARGIN - GUTTER) / 2
    left, right = MARGIN, MARGIN + col_w + GUTTER
    full_w = PAGE_W - 2 * MARGIN

    # page 1: single column
    page = doc.new_page(width=PAGE_W, height=PAGE_H)
    _furniture(page, 1, logo)
    w = _Writer(page)
    y = w.lines(MARGIN, 60, full_w, f"Chest CT findings in synthetic patients with COVID-19 (case series {seed})",
                size=16, font="hebo")
    y = w.lines(MARGIN, y, full_w, f"A. Author, B. Author. doi:10.5555/covtool.synth.{seed}", size=9)
    y = w.lines(MARGIN, y + 6, full_w, LOREM * 3, max_lines=9)
    grid = grid_image([ct_panel(rng) for _ in range(4)], cols=2, gutter=10, background=0)
    side = float(rng.uniform(250, 300))
    fx0 = MARGIN + (full_w - side) / 2
    fig_rect = (fx0, y + 10, fx0 + side, y + 10 + side * grid.shape[0] / grid.shape[1])
    page.insert_image(pymupdf.Rect(*fig_rect), stream=_encode(grid, "png"))
    cap_lines = ["Chest CT of four patients: bilateral ground-glass opacities in the periph-",
                 "eral lung, consolidation in the lower lobes and crazy paving in patient",
                 "four, seven days after the onset of symptoms."]
    page.insert_text((MARGIN, fig_rect[3] + 8 + CAPTION_SIZE), "Figure 1.", fontsize=CAPTION_SIZE, fontname="hebo")
    label_w = pymupdf.get_text_length("Figure 1. ", fontname="hebo", fontsize=CAPTION_SIZE)
    page.insert_text((MARGIN + label_w, fig_rect[3] + 8 + CAPTION_SIZE), cap_lines[0], fontsize=CAPTION_SIZE, fontname="helv")
    y = w.raw(MARGIN, fig_rect[3] + 8 + CAPTION_SIZE * 0.05, cap_lines[1:], CAPTION_SIZE)
    text1 = ("Figure 1. Chest CT of four patients: bilateral ground-glass opacities in the peripheral "
             "lung, consolidation in the lower lobes and crazy paving in patient four, seven days after "
             "the onset of symptoms.")
    truth.append(TruthFigure("1", 1, fig_rect, text1, "raster", 4, "below"))
    w.lines(MARGIN, y + 14, full_w, LOREM * 2, max_lines=6)

    # page 2: two columns
    page = doc.new_page(width=PAGE_W, height=PAGE_H)
    _furniture(page, 2, logo)
    w = _Writer(page)
    y = w.lines(left, 60, col_w, LOREM, max_lines=5)
    chart_h = float(rng.uniform(140, 170))
    chart = _bar_chart(page, w, (left, y + 8, left + col_w, y + 8 + chart_h), rng)
    y, text2 = _caption(w, left, chart[3] + 6, col_w, "Figure 2.",
                        "Daily new cases in the cohort over six weeks (vector chart).")
    truth.append(TruthFigure("2", 2, chart, text2, "vector", 1, "below"))
    page.insert_text((left, y + 14), "Figure 2 shows that cases peaked in the third week, when most",
                     fontsize=BODY_SIZE, fontname="helv")
    w.lines(left, y + 14 + 3, col_w, LOREM * 2, max_lines=12)
    y, text3 = _caption(w, right, 60, col_w, "Fig. 3",
                        "Follow-up CT of one patient on days 1, 5 and 12 (three panels).")
    stack_top = y + 6
    n_panels, pw = 3, min(col_w, 150.0)
    py = stack_top
    boxes = []
    for _ in range(n_panels):
        r = (right + (col_w - pw) / 2, py, right + (col_w + pw) / 2, py + pw)
        page.insert_image(pymupdf.Rect(*r), stream=_encode(ct_panel(rng), "png"))
        boxes.append(r)
        py = r[3] + 4
    bbox3 = (boxes[0][0], boxes[0][1], boxes[-1][2], boxes[-1][3])
    truth.append(TruthFigure("3", 2, bbox3, text3, "raster", n_panels, "above"))
    w.lines(right, py + 10, col_w, LOREM, max_lines=6)

    # page 3: a table, then a single image and a full-width panel strip
    page = doc.new_page(width=PAGE_W, height=PAGE_H)
    _furniture(page, 3, logo)
    w = _Writer(page)
    y, _ = _caption(w, left, 60, col_w, "Table 1", "Characteristics of the patients.")
    ty = y + 4
    for k in range(6):
        page.draw_line((left, ty), (left + col_w, ty), color=(0, 0, 0), width=0.6 if k in (0, 1, 5) else 0.2)
        if k < 5:
            page.insert_text((left + 4, ty + 10), f"Group {k}    {20 + 3 * k} patients    {40 + k}%",
                             fontsize=8, fontname="helv")
        ty += 14
    w.lines(left, ty + 8, col_w, LOREM * 2, max_lines=14)
    ct = ct_panel(rng, size=170)
    side4 = float(rng.uniform(160, col_w))
    r4 = (right + (col_w - side4) / 2, 64, right + (col_w + side4) / 2, 64 + side4)
    page.insert_image(pymupdf.Rect(*r4), stream=_encode(ct, "jpeg"))
    y4, text4 = _caption(w, right, r4[3] + 6, col_w, "Fig. 4.",
                         "Axial CT slice with a subpleural lesion in the right lower lobe.")
    truth.append(TruthFigure("4", 3, r4, text4, "raster", 1, "below"))
    w.lines(right, y4 + 8, col_w, LOREM, max_lines=8)
    strip = grid_image([ct_panel(rng) for _ in range(3)], cols=3, gutter=12, background=255)
    top = 430.0
    sw = full_w * 0.8
    r5 = (MARGIN + (full_w - sw) / 2, top, MARGIN + (full_w + sw) / 2, top + sw * strip.shape[0] / strip.shape[1])
    insert_pdftex_image(page, r5, strip)       # as pdfTeX stores a PNG: PNG rows, predictor 15
    y5, text5 = _caption(w, MARGIN, r5[3] + 6, full_w, "FIGURE 5:",
                         "Three CT panels of patients in the validation group, side by side.")
    truth.append(TruthFigure("5", 3, r5, text5, "raster", 3, "below"))
    w.lines(MARGIN, y5 + 8, full_w, LOREM, max_lines=4)

    path = Path(path)
    with atomic_path(path, force=force) as tmp:
        doc.save(tmp, garbage=3, deflate=True)
    doc.close()
    return truth


def write_pdf_set(folder: str | os.PathLike, n: int = 3, seed: int = 0, force: bool = False) -> dict[str, list[TruthFigure]]:
    """``n`` synthetic papers ``paper_000.pdf`` ... in ``folder``; their truth by file name."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for k in range(n):
        name = f"paper_{k:03d}.pdf"
        out[name] = make_paper(folder / name, seed=seed + k, force=force)
    return out
