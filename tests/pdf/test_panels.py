from __future__ import annotations

import numpy as np
import pymupdf
import pytest

from covtool.pdf.panels import (
    Label,
    PanelOptions,
    find_labels,
    image_tiles,
    letter_labels,
    letter_sequence,
    read_glyph,
    similar_tiles,
    split_panels,
    to_gray8,
)
from covtool.synth.pdf import ct_panel, grid_image


def render(width: float, height: float, draw) -> np.ndarray:
    """A page of ``width`` x ``height`` points drawn by ``draw(page)``, as grey pixels at 144 dpi
    (real glyphs, antialiased, as a rendered or scanned figure has them)."""
    doc = pymupdf.open()
    page = doc.new_page(width=width, height=height)
    draw(page)
    pix = page.get_pixmap(dpi=144, colorspace=pymupdf.csGRAY)
    img = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width).copy()
    doc.close()
    return img


def photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A textured picture tile (a micrograph, a photograph), mid-grey on average."""
    return np.clip(rng.normal(120, 40, (h, w)), 0, 255).astype(np.uint8)


def chart(page, x: float, y: float, w: float, h: float, bars: int = 5, axes: bool = True) -> None:
    """A bar chart as a figure tool draws it: axes, bars with white between them, tick labels."""
    if axes:
        page.draw_line((x, y), (x, y + h), width=0.8)
        page.draw_line((x, y + h), (x + w, y + h), width=0.8)
    step = w / bars
    for k in range(bars):
        top = y + h * (0.2 + 0.6 * ((k * 37) % 10) / 10)
        page.draw_rect(pymupdf.Rect(x + k * step + step * 0.3, top, x + k * step + step * 0.7, y + h),
                       color=(0, 0, 0), fill=(0.3, 0.3, 0.3))
        page.insert_text((x + k * step + step * 0.35, y + h + 9), str(k + 1), fontsize=7)
    for k in range(3):
        page.insert_text((x - 9, y + h - k * h / 3 + 2), str(k * 5), fontsize=7)


# --- montages: no letters, pictures of one size ---------------------------------------------

def test_montage_of_photos_on_white_in_reading_order():
    rng = np.random.default_rng(0)
    img = grid_image([photo(rng, 40, 50) for _ in range(6)], cols=3, gutter=6, background=255)
    boxes = split_panels(img)
    assert len(boxes) == 6
    assert boxes[0] == (0, 0, 50, 40)
    assert boxes[4] == (56, 46, 106, 86)   # second row, middle column


def test_black_gutters_between_ct_panels():
    rng = np.random.default_rng(1)
    img = grid_image([ct_panel(rng, 96) for _ in range(4)], cols=2, gutter=8, background=0)
    boxes = split_panels(img)
    assert len(boxes) == 4
    # each panel lies inside its own grid cell
    for (x0, y0, x1, y1), (r, c) in zip(boxes, [(0, 0), (0, 1), (1, 0), (1, 1)], strict=True):
        assert c * 104 <= x0 < x1 <= c * 104 + 96
        assert r * 104 <= y0 < y1 <= r * 104 + 96


def test_thin_gutters_of_a_ct_montage_still_split_it():
    # under-splitting: CT slices 256 px apart by 3 px of black
    rng = np.random.default_rng(2)
    img = grid_image([ct_panel(rng, 128) for _ in range(6)], cols=3, gutter=3, background=0)
    assert len(split_panels(img)) == 6


def test_a_mark_in_the_gutter_does_not_bridge_it():
    rng = np.random.default_rng(3)
    img = grid_image([photo(rng, 80, 80)] * 2, cols=2, gutter=10, background=255)
    img[2:6, 82:86] = 0          # a small mark in the gutter
    assert len(split_panels(img)) == 2


def test_single_image_and_blank():
    img = np.full((60, 60), 255, np.uint8)
    img[10:50, 12:48] = 30
    assert split_panels(img) == [(12, 10, 48, 50)]
    assert split_panels(np.full((20, 20), 255, np.uint8)) == []


def test_tiny_slivers_are_not_panels():
    img = np.full((100, 100), 255, np.uint8)
    img[:, :90] = 40
    img[:, 94:] = 40            # a 6-px strip: below min_panel
    assert len(split_panels(img, PanelOptions(min_panel=0.15))) == 1


# --- over-splitting: white space inside one chart, diagram or table -------------------------

def test_bar_chart_with_white_between_its_bars_is_one_panel():
    # bars with white columns between them and only small tick labels below (no axis line):
    # removing the labels as marks used to leave each bar a panel
    img = render(300, 160, lambda p: chart(p, 30, 10, 250, 120, bars=8, axes=False))
    assert len(split_panels(img)) == 1


def test_picture_of_a_table_is_one_panel():
    # a three-rule table: its rows are text between long rules (a picture of a table was cut
    # into 29 pieces)
    def table(page):
        for r in range(8):
            y = 30 + 16 * r
            for c, word in enumerate(("Model", "0.91", "0.88", "12 ms")):
                page.insert_text((20 + 80 * c, y), word if r else word.upper(), fontsize=9)
        for y in (16, 35, 152):
            page.draw_line((15, y), (330, y), width=1.2)
    assert len(split_panels(render(350, 160, table))) == 1


def test_flow_chart_of_separate_boxes_is_one_panel():
    def flow(page):
        for k, text in enumerate(("Records identified", "Screened", "Included")):
            r = pymupdf.Rect(60, 10 + 60 * k, 240, 40 + 60 * k)
            page.draw_rect(r, color=(0, 0, 0), fill=(0.85, 0.85, 0.85))
            page.insert_text((r.x0 + 10, r.y0 + 19), text, fontsize=10)
        page.draw_rect(pymupdf.Rect(260, 70, 340, 100), color=(0, 0, 0))   # a side box, apart
        page.insert_text((265, 89), "Excluded", fontsize=10)
    assert len(split_panels(render(360, 170, flow))) == 1


def test_two_charts_side_by_side_without_letters_stay_whole():
    # white space alone is no evidence: only letters or a montage of pictures split
    img = render(420, 150, lambda p: (chart(p, 25, 10, 160, 110), chart(p, 240, 10, 160, 110)))
    assert len(split_panels(img)) == 1


# --- lettered panels ------------------------------------------------------------------------

def test_lettered_charts_split_at_their_letters():
    def figure(page):
        for k, letter in enumerate("ab"):
            page.insert_text((10 + 210 * k, 14), letter, fontsize=13, fontname="hebo")
            chart(page, 35 + 210 * k, 22, 160, 110)
    img = render(420, 160, figure)
    boxes = split_panels(img)
    assert len(boxes) == 2
    assert boxes[0][2] <= boxes[1][0]          # a left of b, in letter order
    for box, x in zip(boxes, (35, 245), strict=True):     # each holds its chart (pixels: 2 x points)
        assert box[0] <= 2 * x - 18 and box[2] >= 2 * (x + 160) - 2


def test_letters_centred_over_their_panels():
    # "A" and "B" as titles centred above the charts: each panel is its own chart, whole
    def figure(page):
        for k, letter in enumerate("AB"):
            page.insert_text((100 + 210 * k, 14), letter, fontsize=12, fontname="tibo")
            chart(page, 30 + 210 * k, 24, 160, 110)
    boxes = split_panels(render(420, 160, figure))
    assert len(boxes) == 2
    for box, x in zip(boxes, (30, 240), strict=True):
        assert box[0] <= 2 * x - 18 and 2 * (x + 160) - 2 <= box[2] < 2 * (x + 200)


def test_bracketed_capitals_in_a_column_major_layout():
    # (A), (B) down the left column, (C) alone on the right: three panels, as lettered
    def figure(page):
        for letter, (x, y) in zip("ABC", [(10, 14), (10, 164), (230, 14)], strict=True):
            page.insert_text((x, y), f"({letter})", fontsize=12, fontname="hebo")
            chart(page, x + 25, y + 8, 150, 110)
    boxes = split_panels(render(430, 300, figure))
    assert len(boxes) == 3
    a, b, c = boxes
    assert a[3] <= b[1] and c[0] >= a[2]


def test_letters_read_from_the_text_layer_divide_an_uncut_figure():
    # panels that no gutter separates (b's axis touches a's): the given letters still divide them
    img = np.full((200, 400), 255, np.uint8)
    img[30:190, 10:390] = 80
    labels = [Label("a", 1.0, (2, 5, 12, 20)), Label("b", 1.0, (200, 5, 210, 20))]
    boxes = split_panels(img, labels=labels)
    assert len(boxes) == 2
    assert boxes[0][2] <= 200 < boxes[1][2]


def test_white_letters_inside_ct_tiles_order_the_panels():
    import cv2

    rng = np.random.default_rng(5)
    tiles = []
    for ch in "ABCD":
        tile = ct_panel(rng, 160).copy()
        cv2.putText(tile, ch, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 255, 2)
        tiles.append(tile)
    img = grid_image(tiles, cols=2, gutter=4, background=0)
    assert [lb.char for lb in find_labels(img)] == list("ABCD")
    boxes = split_panels(img)
    assert len(boxes) == 4
    for (x0, y0, x1, y1), (r, c) in zip(boxes, [(0, 0), (0, 1), (1, 0), (1, 1)], strict=True):
        assert c * 164 <= x0 < x1 <= c * 164 + 160 and r * 164 <= y0 < y1 <= r * 164 + 160


def test_words_of_a_diagram_are_not_panel_letters():
    # "A dataset" and "B cells" start lines, but are words: no letters, one panel
    def diagram(page):
        page.insert_text((20, 30), "A dataset with 640 features", fontsize=11)
        page.insert_text((20, 90), "B cells and T cells", fontsize=11)
        page.draw_rect(pymupdf.Rect(15, 40, 250, 70), color=(0, 0, 0))
        page.draw_rect(pymupdf.Rect(15, 100, 250, 130), color=(0, 0, 0))
    img = render(270, 140, diagram)
    assert find_labels(img) == []
    assert len(split_panels(img)) == 1


def test_read_glyph_reads_bold_and_regular_letters():
    for font in ("hebo", "tiro"):
        for ch in "aBcD":
            img = render(40, 40, lambda p, ch=ch, font=font: p.insert_text((8, 30), ch, fontsize=24, fontname=font))
            got, score = read_glyph((255 - img) / 255.0)
            assert got.lower() == ch.lower() and score > 0.8, (font, ch, got)
            assert got == ch or ch.lower() in "cosuvwxz"      # c and C differ in size only


def test_letter_sequence_keeps_the_run_from_a():
    def lb(ch, y=0.0, h=10.0):
        return Label(ch, 0.9, (0.0, y, 8.0, y + h))
    assert [x.char for x in letter_sequence([lb("b", 50), lb("a"), lb("d", 100)])] == ["a", "b"]
    assert letter_sequence([lb("a"), lb("B", 50)]) == []                 # cases differ
    assert letter_sequence([lb("a"), lb("b", 50, h=30)]) == []           # a tick label's size
    assert [x.char for x in letter_sequence([lb("A"), lb("B", 50), lb("c", 90)])] == ["A", "B", "c"]
    assert letter_sequence([lb("a")]) == []


def test_letter_labels_take_bold_or_large_letters_only():
    spans = [("a", (0, 0, 8, 12), 12.0, True), ("b", (200, 0, 208, 12), 12.0, True),
             ("e", (50, 50, 53, 55), 4.5, False),        # a subscript ("V" + "e")
             ("Time (s)", (60, 90, 90, 96), 6.0, False), ("c", (80, 80, 84, 86), 6.0, False)]
    got = letter_labels(spans)
    assert [x.char for x in got] == ["a", "b"]
    assert got[1].box == (200, 0, 208, 12)
    assert letter_labels([("(A)", (0, 0, 9, 9), 9.0, True), ("(B)", (0, 50, 9, 59), 9.0, True)])[1].char == "B"


# --- embedded images ------------------------------------------------------------------------

def test_image_tiles_accepts_a_grid_of_equal_images():
    boxes = [(0, 0, 100, 100), (110, 0, 210, 100), (0, 110, 100, 210), (110, 110, 210, 210)]
    assert image_tiles(boxes, (0, 0, 210, 210))


def test_image_tiles_rejects_strips_and_flow_chart_boxes():
    # one picture stored as two strips that meet edge to edge
    assert not image_tiles([(0, 0, 300, 100), (0, 100, 300, 200)], (0, 0, 300, 200))
    # text boxes of a flow chart: small, of many sizes, joined by vector arrows
    boxes = [(20, 0, 200, 30), (220, 0, 300, 30), (20, 80, 200, 100), (20, 160, 200, 200)]
    assert not image_tiles(boxes, (0, 0, 320, 220))


@pytest.mark.parametrize("sizes, ok", [([(100, 100), (104, 98)], True), ([(100, 100), (60, 100)], False),
                                       ([(300, 100), (300, 100)], False)])
def test_similar_tiles(sizes, ok):
    assert similar_tiles(sizes) is ok


def test_to_gray8_scales_16_bit_and_keeps_rgb_mean():
    a = np.array([[0, 1000], [2000, 4000]], np.uint16)
    assert to_gray8(a).tolist() == [[0, 64], [128, 255]]
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 90
    assert to_gray8(rgb)[0, 0] == 30


# --- whole figures through extract --------------------------------------------------------

def _png(img: np.ndarray) -> bytes:
    import cv2

    return cv2.imencode(".png", img)[1].tobytes()


def _text_box(w: int, h: int, k: int) -> np.ndarray:
    """A raster text box of a flow chart: a frame and two lines of text."""
    import cv2

    img = np.full((h, w), 255, np.uint8)
    cv2.rectangle(img, (0, 0), (w - 1, h - 1), 0, 2)
    for line in range(2):
        cv2.putText(img, f"n = {37 * k + 11 * line} records", (10, 25 + 25 * line),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.6, 0, 1)
    return img


@pytest.fixture(scope="module")
def figures_pdf(tmp_path_factory):
    """A paper whose figures each hold one over- or under-splitting trap, one a page; the panels
    a reader counts, by figure."""
    import cv2

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    # 1: a flow chart of four raster text boxes joined by vector arrows (not four panels)
    for k in range(4):
        r = pymupdf.Rect(150, 80 + 70 * k, 330, 120 + 70 * k)
        page.insert_image(r, stream=_png(_text_box(360, 80, k)))
        if k < 3:
            page.draw_line((240, r.y1), (240, r.y1 + 30), width=1)
            page.draw_polyline([(236, r.y1 + 25), (240, r.y1 + 30), (244, r.y1 + 25)], width=1)
    page.draw_rect(pymupdf.Rect(360, 150, 480, 190), color=(0, 0, 0))
    page.draw_line((330, 170), (360, 170), width=1)
    page.insert_text((72, 400), "Figure 1. Flowchart of the study selection process.", fontsize=9)
    # 2: one chart stored as two strips that meet edge to edge (not two panels)
    strip = np.full((200, 400), 255, np.uint8)
    for k in range(8):
        cv2.rectangle(strip, (20 + 45 * k, 60 + 15 * (k % 4)), (50 + 45 * k, 190), 60, -1)
    page.insert_image(pymupdf.Rect(100, 450, 500, 550), stream=_png(strip[:100]))
    page.insert_image(pymupdf.Rect(100, 550, 500, 650), stream=_png(strip[100:]))
    page.insert_text((72, 670), "Figure 2. Forest plot of the outcomes.", fontsize=9)
    # 3: vector charts lettered in the text layer, a bold "a" and "b" (two panels)
    page = doc.new_page(width=595, height=842)
    for k, letter in enumerate("ab"):
        page.insert_text((80 + 215 * k, 84), letter, fontsize=13, fontname="hebo")
        chart(page, 105 + 215 * k, 92, 180, 120)
    page.insert_text((72, 240), "Figure 3. Benchmarks of the models on CPU and GPU.", fontsize=9)
    # 4: four CT images as separate images in a grid (four panels)
    page = doc.new_page(width=595, height=842)
    rng = np.random.default_rng(4)
    for k in range(4):
        x, y = 150 + 130 * (k % 2), 80 + 130 * (k // 2)
        page.insert_image(pymupdf.Rect(x, y, x + 120, y + 120), stream=_png(ct_panel(rng, 128)))
    page.insert_text((150, 350), "Figure 4. Chest CT of four patients.", fontsize=9)
    path = tmp_path_factory.mktemp("figs") / "traps.pdf"
    doc.save(path)
    doc.close()
    return path, {"1": 1, "2": 1, "3": 2, "4": 4}


def test_extract_counts_the_panels_a_reader_counts(figures_pdf, tmp_path):
    from covtool.pdf.pipeline import ExtractOptions, extract_pdf

    path, want = figures_pdf
    res = extract_pdf(str(path), str(tmp_path), ExtractOptions(split_panels=True))
    assert res.error is None
    got: dict[str, int] = {}
    for r in res.rows:
        got[r["figure"]] = got.get(r["figure"], 0) + 1
    assert got == want
    # the CT grid's panels are its own images, written as they are stored
    assert all(r["format"] == "png" and r["panel"] for r in res.rows if r["figure"] == "4")
