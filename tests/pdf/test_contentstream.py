"""What a content stream draws, read from its bytes."""

from __future__ import annotations

from covtool.pdf.contentstream import drawn_xobjects


def test_xobjects_come_in_drawing_order_by_their_resource_names():
    names = {b"Im1": 10, b"Im2": 11, b"Fm0": 12}
    content = b"q 100 0 0 50 0 0 cm /Im2 Do Q\nq/Im1 Do Q /Other Do\n/Im1 Do (/Im1 Dox) Tj"
    assert drawn_xobjects(content, names) == [11, 10, 10]
    assert drawn_xobjects(b"", names) == []


def test_an_inline_image_leaves_the_order_unknown_but_a_bi_that_is_no_operator_does_not():
    names = {b"Im1": 10}
    for text in (b"(BI) Tj", b"/BIG gs", b"ABI 1"):
        assert drawn_xobjects(b"/Im1 Do " + text, names) == [10], text
    for inline in (b"BI /W 1 /H 1 /CS /G /BPC 8 ID \x80 EI", b"q]BI/W 1 ID", b"BI\n/W 1"):
        assert drawn_xobjects(b"/Im1 Do\n" + inline, names) is None, inline
