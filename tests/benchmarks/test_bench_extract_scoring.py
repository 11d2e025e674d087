"""The scoring of benchmarks/bench_extract.py: what counts as a prediction and as a right pair."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from covtool.synth.pdf import make_paper

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_extract.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_extract", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module        # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def row(page, figure, caption="", bbox="0,0,10,10", panel=""):
    return {"page": page, "figure": figure, "caption": caption, "bbox": bbox, "panel": panel}


def test_normalise_nfkc_and_whitespace(bench):
    assert bench.normalise("  Fig\ufb01gure\u00a01\n\tThe   end ") == "Figfigure 1 The end"


def test_uncaptioned_rows_are_predictions_that_never_match(bench):
    expected = [bench.Expected(2, "1", "Figure 1 Chest", 1)]
    rows = [row(2, "1", "Figure 1  Chest CT"), row(2, ""), row(3, "")]
    s = bench.score_pairs(bench.covtool_pairs(rows), expected)
    assert (s.right, s.predictions, s.expected, s.uncaptioned) == (1, 3, 1, 2)
    assert s.paired == {0}


def test_pair_needs_page_number_and_caption_start(bench):
    expected = [bench.Expected(2, "1", "Figure 1 Chest CT", 1), bench.Expected(3, "2", "Fig. 2 Cases", 1)]
    rows = [row(3, "1", "Figure 1 Chest CT"),        # wrong page
            row(3, "2", "Fig. 2 Deaths"),            # caption does not start right
            row(2, "1", "Figure\u00a01 Chest\nCT of four")]
    s = bench.score_pairs(bench.covtool_pairs(rows), expected)
    assert (s.right, s.predictions, s.paired) == (1, 3, {0})


def test_one_pair_per_expected_figure(bench):
    expected = [bench.Expected(2, "1", "Figure 1", 1)]
    s = bench.score_pairs(bench.covtool_pairs([row(2, "1", "Figure 1 a"), row(2, "1", "Figure 1 b")]),
                          expected)
    assert (s.right, s.predictions) == (1, 2)


def test_supplementary_apart_only_when_none_is_expected(bench):
    rows = [row(5, "S1", "Figure S1 More"), row(2, "1", "Figure 1 A")]
    plain = [bench.Expected(2, "1", "Figure 1", 1)]
    s = bench.score_pairs(bench.covtool_pairs(rows), plain)
    assert (s.right, s.predictions, s.supplementary) == (1, 1, 1)
    with_supp = plain + [bench.Expected(6, "S2", "Figure S2", 1)]
    s = bench.score_pairs(bench.covtool_pairs(rows), with_supp)
    assert (s.right, s.predictions, s.supplementary) == (1, 2, 0)


def test_generated_truth_needs_the_box(bench):
    expected = [bench.Expected(1, "1", "Figure 1. CT", 2, (0.0, 0.0, 100.0, 100.0))]
    near = bench.score_pairs(bench.covtool_pairs([row(1, "1", "Figure 1. CT", "0,0,100,95")]), expected)
    far = bench.score_pairs(bench.covtool_pairs([row(1, "1", "Figure 1. CT", "0,50,100,150")]), expected)
    assert (near.right, far.right) == (1, 0)


def test_panel_hits_count_rows_per_page_and_figure(bench):
    expected = [bench.Expected(2, "1", "Figure 1", 2), bench.Expected(3, "2", "Figure 2", 1)]
    rows = [row(2, "1", panel="a"), row(2, "1", panel="b"), row(3, "2", panel="a"), row(3, "2", panel="b")]
    assert bench.panel_hits(rows, expected) == [True, False]


def box(boxclass, lines, x=(50, 300)):
    """A layout box as pymupdf4llm.to_json writes it: lines of (text, x0, x1) spans."""
    return {"boxclass": boxclass, "x0": x[0], "y0": 100, "x1": x[1], "y1": 120,
            "textlines": [{"spans": [{"text": t, "size": 9.0, "bbox": [x0, 100, x1, 110]}
                                     for t, x0, x1 in spans]} for spans in lines]}


def test_peer_pairs_need_a_picture_on_the_page_and_fig(bench):
    doc = {"pages": [
        {"page_number": 1, "boxes": [box("picture", []),
                                     box("caption", [[("Figure 3", 50, 85), ("Lungs of", 90, 130)],
                                                     [("patients", 50, 90)]]),
                                     box("caption", [[("Table 1 Ages", 50, 120)]])]},
        {"page_number": 2, "boxes": [box("caption", [[("Fig. 4 No picture here", 50, 150)]])]},
        {"page_number": 3, "boxes": [box("picture", []),
                                     box("caption", [[("FIG", 50, 62), ("URE 5: X", 62, 100)]]),
                                     box("caption", [[("Figures show", 50, 100)]])]},
    ]}
    pairs = bench.peer_pairs(doc)
    assert [(p.page, p.name, p.caption) for p in pairs] == [
        (1, "3", "Figure 3 Lungs of patients"), (3, "5", "FIGURE 5: X"), (3, "", "Figures show")]


def test_load_expected_and_extra_set(bench, tmp_path):
    make_paper(tmp_path / "a.pdf", seed=1)
    (tmp_path / "expected.json").write_text(json.dumps({
        "a.pdf": {"figures": [{"page": 1, "name": "1", "caption_start": "Figure 1", "panels": 4}]},
        "gone.pdf": {"figures": []}}))
    expected, missing = bench.load_expected(tmp_path)
    assert expected == {"a.pdf": [bench.Expected(1, "1", "Figure 1", 4)]}
    assert missing == ["gone.pdf"]
    assert tmp_path.resolve() in bench.real_set_dirs([str(tmp_path)])


@pytest.mark.skipif(importlib.util.find_spec("pymupdf4llm") is None, reason="pymupdf4llm not installed")
def test_peer_runs_on_a_generated_paper(bench, tmp_path):
    truth = {(t.page, t.name) for t in make_paper(tmp_path / "p.pdf", seed=3)}
    seconds, docs = bench.run_peer([tmp_path / "p.pdf"])
    pairs = bench.peer_pairs(docs["p.pdf"])
    assert seconds > 0 and pairs
    assert {(p.page, p.name) for p in pairs} <= truth
