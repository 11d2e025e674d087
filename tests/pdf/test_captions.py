from __future__ import annotations

import pytest

from covtool.pdf.captions import (
    Caption,
    deduplicate,
    find_captions,
    join_lines,
    match_caption_start,
    may_hold_caption,
)
from covtool.pdf.layout import PageLayout, TextLine


@pytest.mark.parametrize("text, expected", [
    ("Figure 1. Chest CT", ("figure", "1")),
    ("Fig. 2 Axial slice", ("figure", "2")),
    ("FIGURE 3: Results", ("figure", "3")),
    ("Fig 4 Bar chart", ("figure", "4")),
    ("Figure S1 Query fragment", ("figure", "S1")),
    ("Supplementary Figure 2. More", ("figure", "S2")),
    ("Extended Data Fig. 5 | Maps", ("figure", "ED5")),
    ("Table 2 Patients", ("table", "2")),
    ("Figure 7", ("figure", "7")),
])
def test_caption_starts(text, expected):
    kind, name, _ = match_caption_start(text)
    assert (kind, name) == expected


@pytest.mark.parametrize("text", [
    "Figure 3 shows the opacities",
    "Fig. 2A and B are from day 5",
    "Figure 2 (...continued)",
    "Table 2 (continued)",
    "Figure 2. (continued)",
    "Figure 2—continued",
    "Fig. 2 Continued",
    "Table 1 (cont’d)",
    "Figures are shown below",
    "In Figure 1 we see",
    "Figure 3 (right) shows the opacities",
    "Fig. 2a–c show the same patient",
    "Figure 4 (top panel) illustrates",
    "Figure 1 A, B show",
])
def test_body_mentions_and_continuations_are_not_captions(text):
    assert match_caption_start(text) is None


@pytest.mark.parametrize("text, name", [
    ("Figure 1 (a) axial CT and (b) coronal", "1"),      # panel text after a parenthesis
    ("Figure 2 (color online) Chest CT", "2"),
    ("Figure 6 (A) Lung window", "6"),
])
def test_panel_text_after_a_parenthesis_is_still_a_caption(text, name):
    assert match_caption_start(text)[1] == name


def test_words_beginning_like_continued_are_caption_text():
    assert match_caption_start("Figure 2. Contrast-enhanced CT")[:2] == ("figure", "2")
    assert match_caption_start("Fig. 4 Control group")[:2] == ("figure", "4")


def test_punctuation_scores_higher():
    assert match_caption_start("Figure 1. Text")[2] > match_caption_start("Figure 1 Text")[2]


def test_join_lines_dehyphenates_words_only():
    assert join_lines(["Crystal structure with com-", "pound 33RE"]) == "Crystal structure with compound 33RE"
    assert join_lines(["relative 33RE-", "binding affinity"]) == "relative 33RE-binding affinity"
    assert join_lines(["a  \ufb01eld", "  next\tline "]) == "a field next line"


def _page(lines):
    return PageLayout(0, 600, 800, lines=lines)


def test_find_captions_grows_paragraph_and_stops_at_gap():
    lines = [
        TextLine((50, 100, 300, 110), "Figure 1. First line of the caption that goes on", 9, True, 0),
        TextLine((50, 111, 300, 121), "and on to a second line.", 9, False, 0),
        TextLine((50, 122, 300, 132), "A third line in the next block.", 9, False, 1),
        TextLine((50, 160, 300, 170), "Body text far below, not caption.", 9, False, 2),
    ]
    caps = find_captions(_page(lines))
    assert len(caps) == 1
    c = caps[0]
    assert (c.kind, c.name) == ("figure", "1")
    assert c.text == ("Figure 1. First line of the caption that goes on and on to a second line. "
                      "A third line in the next block.")
    assert c.bbox[3] == pytest.approx(132)


def test_label_and_text_on_the_same_baseline_are_joined():
    lines = [TextLine((50, 100, 90, 110), "Figure 2", 9, True, 0),
             TextLine((95, 100, 300, 110), "Fragment suggested to bind", 9, False, 0)]
    caps = find_captions(_page(lines))
    assert caps[0].text == "Figure 2 Fragment suggested to bind"


def test_deduplicate_keeps_the_strongest_label():
    strong = Caption("figure", "1", 2, (0, 0, 1, 1), "Figure 1. x", score=3)
    weak = Caption("figure", "1", 0, (0, 0, 1, 1), "Figure 1 x", score=1)
    other = Caption("table", "1", 0, (0, 0, 1, 1), "Table 1 x", score=0)
    assert deduplicate([weak, strong, other]) == [strong, other]


@pytest.mark.parametrize("text, may", [
    ("Body text.\nFigure 3. Chest CT of a patient\nmore", True),
    ("as shown in\nFigure 3 shows the lesion in\nthe lung", False),      # a mention, not a caption
    ("Figure\n3. Chest CT with ground-glass opacity", True),            # label alone on its line
    ("Figure\n \n3. Chest CT with ground-glass opacity", True),         # a blank line between
    ("Supplementary\nFigure S1: timeline", True),
    ("Table 2: Patients\n", True),
    ("Introduction\nCOVID-19 spreads fast.\n", False),
    ("", False),
])
def test_may_hold_caption(text, may):
    assert may_hold_caption(text) is may


def test_may_hold_caption_never_misses_a_page_with_captions(paper):
    import pymupdf

    from covtool.pdf import document

    path, _ = paper
    doc = pymupdf.open(path)
    for page in doc:
        recording = document.display_list(page)
        text = pymupdf.TextPage(recording.get_textpage(flags=0)).extractText()
        layout = document.read_page(page, with_drawings=False, recording=recording)
        assert may_hold_caption(text) is bool(find_captions(layout)), page.number


@pytest.mark.parametrize("text", [
    "Fig. 3) by direct current injection",          # "(see" on the line before: a mention's end
    "Supplementary Fig. 3). Experiments were divided",
    "Figure 2]. The next sentence",
])
def test_a_label_closing_a_parenthesis_is_a_mention(text):
    assert match_caption_start(text) is None


def test_schemes_and_algorithms_are_their_own_kinds():
    assert match_caption_start("Scheme S1 Synthetic protocol")[:2] == ("scheme", "S1")
    assert match_caption_start("Algorithm 2. Training loop")[:2] == ("algorithm", "2")


def test_side_by_side_captions_merged_into_one_block_are_split():
    # MuPDF merged two captions set side by side into block 0, lines interleaved
    lines = [
        TextLine((50, 300, 280, 310), "Figure 1. Left chest CT of the first", 9, True, 0),
        TextLine((320, 300, 550, 310), "Figure 2. Right chest CT of the", 9, True, 0),
        TextLine((50, 311, 280, 321), "patient at admission.", 9, False, 0),
        TextLine((320, 311, 550, 321), "second patient.", 9, False, 0),
    ]
    caps = {c.name: c for c in find_captions(_page(lines))}
    assert caps["1"].text == "Figure 1. Left chest CT of the first patient at admission."
    assert caps["2"].text == "Figure 2. Right chest CT of the second patient."
    assert caps["1"].bbox[2] <= 280 and caps["2"].bbox[0] >= 320


def test_a_label_in_a_block_of_its_own_takes_the_text_beside_it():
    lines = [TextLine((50, 300, 82, 310), "Fig. 1.", 9, True, 0),
             TextLine((86, 300, 300, 310), "Axial CT showing ground-glass", 9, False, 1),
             TextLine((86, 311, 300, 321), "opacities in both lungs.", 9, False, 1),
             TextLine((50, 340, 300, 350), "Body text after a gap.", 9, False, 2)]
    caps = find_captions(_page(lines))
    assert len(caps) == 1
    assert caps[0].text == "Fig. 1. Axial CT showing ground-glass opacities in both lungs."
