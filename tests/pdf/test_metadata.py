"""Title and DOI heuristics on plain data (no PDF opened)."""

from __future__ import annotations

from covtool.pdf.layout import PageLayout, TextLine
from covtool.pdf.metadata import title_doi


def _page(number: int, lines: list[TextLine], height: float = 800.0) -> PageLayout:
    return PageLayout(number, 600.0, height, lines)


def test_a_plausible_metadata_title_and_doi_are_taken_as_they_are():
    meta = {"title": "  Chest CT  findings in COVID-19 ", "subject": "doi:10.1148/radiol.2020200230."}
    assert title_doi(meta) == ("Chest CT findings in COVID-19", "10.1148/radiol.2020200230")


def test_an_implausible_title_falls_back_to_the_largest_text_on_the_top_half_of_page_one():
    first = _page(0, [TextLine((50, 60, 500, 80), "Deep learning for", 18.0),
                      TextLine((50, 82, 500, 100), "COVID-19 CT", 17.8),
                      TextLine((50, 120, 500, 130), "A. Author, B. Author", 10.0),
                      TextLine((50, 600, 500, 640), "Huge footer", 30.0)])     # bottom half: ignored
    second = _page(1, [TextLine((50, 50, 500, 60), "https://doi.org/10.1234/abc.5)", 9.0)])
    for title in ("Microsoft Word - paper.docx", "untitled", "main.tex", "", "CT"):
        assert title_doi({"title": title}, [first, second]) == ("Deep learning for COVID-19 CT",
                                                               "10.1234/abc.5"), title


def test_the_doi_comes_from_the_metadata_fields_first_then_the_first_two_pages_only():
    pages = [_page(0, []), _page(1, []), _page(2, [TextLine((0, 0, 1, 1), "10.9999/third", 9.0)])]
    assert title_doi({"keywords": "covid; 10.1000/kw"}, pages)[1] == "10.1000/kw"
    assert title_doi({}, pages)[1] == ""
    plain = PageLayout(1, 600.0, 800.0, [], lines_read=False, plain="see doi 10.5555/plain.text]")
    assert title_doi({}, [pages[0], plain])[1] == "10.5555/plain.text"
    assert title_doi({}, []) == ("", "")
