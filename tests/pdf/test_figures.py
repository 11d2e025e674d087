from __future__ import annotations

from covtool.pdf.captions import Caption
from covtool.pdf.figures import FigureOptions, find_regions, furniture
from covtool.pdf.layout import ImagePlacement, PageLayout, TextLine
from covtool.pdf.pairing import pair_page


def img(b, digest="d", xref=5):
    return ImagePlacement(b, xref, 100, 100, digest)


def test_furniture_is_what_repeats_across_pages():
    pages = [PageLayout(i, 600, 800, images=[img((500, 20, 560, 40), "logo"), img((50, 100, 300, 300), f"f{i}")],
                        drawings=[(50, 760, 550, 761)]) for i in range(4)]
    digests, drawings = furniture(pages, repeat=3)
    assert digests == {"logo"}
    assert len(drawings) == 1


def test_regions_group_panels_and_drop_small_and_repeated():
    page = PageLayout(0, 600, 800, images=[
        img((100, 100, 200, 200), "a"), img((204, 100, 304, 200), "b"),   # two panels, 4 pt apart
        img((500, 20, 560, 40), "logo"),                                   # repeated logo
        img((100, 600, 120, 615), "icon"),                                 # too small
    ])
    regions = find_regions(page, [], FigureOptions(), furniture_digests={"logo"})
    assert len(regions) == 1
    assert regions[0].bbox == (100, 100, 304, 200)
    assert len(regions[0].images) == 2


def test_caption_between_images_keeps_them_apart():
    cap = Caption("figure", "1", 0, (100, 203, 300, 210), "Figure 1. x")
    page = PageLayout(0, 600, 800, images=[img((100, 100, 300, 200), "a"), img((100, 212, 300, 300), "b")])
    assert len(find_regions(page, [cap])) == 2


def test_drawing_frame_around_figure_and_caption_loses_the_caption_part():
    cap = Caption("figure", "1", 0, (60, 250, 290, 265), "Figure 1. Flow")
    page = PageLayout(0, 600, 800, drawings=[(57, 90, 291, 268), (80, 120, 200, 160)])
    regions = find_regions(page, [cap])
    assert len(regions) == 1
    assert regions[0].bbox[3] <= 250 and regions[0].kind == "vector"


def test_shaded_caption_box_is_not_a_figure():
    cap = Caption("figure", "1", 0, (190, 643, 571, 717), "Figure 1 ...")
    page = PageLayout(0, 600, 800, drawings=[(185, 638, 575, 720)])
    assert find_regions(page, [cap]) == []


def test_pairing_nearest_in_column_and_tables_claim_their_regions():
    left_fig = find_regions(PageLayout(0, 600, 800, images=[img((50, 100, 280, 250), "a")]), [])[0]
    right_fig = find_regions(PageLayout(0, 600, 800, images=[img((320, 100, 550, 250), "b")]), [])[0]
    table_body = find_regions(PageLayout(0, 600, 800, images=[img((50, 420, 280, 600), "t")]), [])[0]
    caps = [Caption("figure", "2", 0, (320, 258, 550, 270), "Figure 2. right"),
            Caption("figure", "1", 0, (50, 258, 280, 270), "Figure 1. left"),
            Caption("table", "1", 0, (50, 400, 280, 410), "Table 1 t")]
    figs = pair_page([left_fig, right_fig, table_body], caps, 800, 0)
    by_name = {f.caption.name: f for f in figs if not f.is_table}
    assert by_name["1"].region.bbox == (50, 100, 280, 250)
    assert by_name["2"].region.bbox == (320, 100, 550, 250)
    table = [f for f in figs if f.is_table]
    assert len(table) == 1 and table[0].region.bbox == (50, 420, 280, 600)


def test_body_text_between_caption_and_region_prevents_pairing():
    region = find_regions(PageLayout(0, 600, 800, images=[img((50, 100, 280, 250), "a")]), [])[0]
    cap = Caption("figure", "1", 0, (50, 330, 280, 340), "Figure 1. x")
    body = [(50, 260, 280, 320)]
    figs = pair_page([region], [cap], 800, 0, obstacles=body)
    assert figs[0].caption is None
    assert pair_page([region], [cap], 800, 0)[0].caption is cap


def test_grid_rows_join_the_captioned_figure():
    rows = [find_regions(PageLayout(0, 600, 800, images=[img((50, y, 280, y + 60), f"r{y}")]), [])[0]
            for y in (100, 180, 260)]
    cap = Caption("figure", "1", 0, (50, 330, 280, 340), "Figure 1. grid")
    figs = pair_page(rows, [cap], 800, 0)
    assert len(figs) == 1
    assert figs[0].region.bbox == (50, 100, 280, 320)
    assert len(figs[0].region.images) == 3


def test_labels_next_to_a_chart_are_included():
    page = PageLayout(0, 600, 800, drawings=[(80, 100, 280, 250)],
                      lines=[TextLine((60, 240, 75, 248), "0", 7, False, 0),
                             TextLine((150, 252, 200, 260), "day", 7, False, 1)])
    (region,) = find_regions(page, [])
    assert region.bbox == (60, 100, 280, 260)


def test_a_caption_in_a_side_column_pairs_with_the_figure_beside_it():
    # Nature's layout: the caption in the left column, the figure's pieces in the right two
    # thirds, top-aligned with it; body text below both
    pieces = [find_regions(PageLayout(0, 594, 783, images=[img(b, f"p{i}")]), [])[0]
              for i, b in enumerate([(238, 86, 300, 130), (355, 86, 416, 129), (225, 358, 550, 485)])]
    cap = Caption("figure", "2", 0, (43, 62, 206, 386), "Figure 2 Subthreshold fields")
    body = [(43, 401, 294, 534), (303, 500, 554, 578)]
    figs = pair_page(pieces, [cap], 783, 0, obstacles=body)
    assert len(figs) == 1 and figs[0].caption is cap
    assert figs[0].region.bbox == (225, 86, 550, 485) and len(figs[0].region.images) == 3


def test_a_side_caption_does_not_take_a_figure_across_body_text_or_one_paired_below():
    left = find_regions(PageLayout(0, 600, 800, images=[img((320, 100, 550, 250), "a")]), [])[0]
    side = Caption("figure", "2", 0, (50, 100, 280, 200), "Figure 2. beside")
    # body text between them: no pair
    figs = pair_page([left], [side], 800, 0, obstacles=[(285, 100, 315, 240)])
    assert figs[0].caption is None
    # a caption below the figure wins it; the side caption stays unpaired
    below = Caption("figure", "1", 0, (320, 258, 550, 270), "Figure 1. below")
    figs = pair_page([left], [side, below], 800, 0)
    assert [f.caption.name for f in figs] == ["1"]


def test_caption_lines_in_a_block_with_axis_labels_are_not_body_text():
    from covtool.pdf.figures import body_blocks

    cap = Caption("figure", "2", 0, (43, 62, 206, 386), "Figure 2 ...")
    lines = [TextLine((480, 62, 519, 70), "Iinj = 150 pA", 6, False, 7),    # the figure's label
             *[TextLine((43, 72 + 10 * k, 206, 81 + 10 * k), f"caption text line number {k}", 7, False, 7)
               for k in range(20)]]
    assert body_blocks(lines, [cap]) == []


def test_page_turn_and_boxes_round_trip():
    from covtool.pdf.layout import page_turn, turn_box, unturn_box

    for turn in range(4):
        b = (10.0, 20.0, 110.0, 70.0)
        t = turn_box(b, turn, 595, 842)
        assert unturn_box(t, turn, 595, 842) == b
        if turn % 2:
            assert t[2] - t[0] == 50 and t[3] - t[1] == 100
    up = [TextLine((340, 365, 354, 742), "Figure 1. Sideways caption text", turn=1),
          TextLine((20, 20, 200, 30), "Header", turn=0)]
    assert page_turn(up) == 1
    assert page_turn([TextLine((0, 0, 1, 1), "plain text")]) == 0
