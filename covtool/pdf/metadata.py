"""A paper's title and DOI: from its PDF metadata, else from the text of its first pages.

Heuristics on plain data (the metadata dictionary, :class:`PageLayout` lines); no PyMuPDF here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from covtool.pdf.layout import PageLayout

DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>,;]+)", re.IGNORECASE)


def title_doi(meta: Mapping[str, str | None], pages: Sequence[PageLayout] = ()) -> tuple[str, str]:
    """The paper's title and DOI.

    Parameters
    ----------
    meta : mapping
        The PDF's document information (``title``, ``subject``, ``keywords``...).
    pages : sequence of PageLayout
        The document's pages as read: the title falls back to the largest text on the first, the
        DOI to the text of the first two.
    """
    title = (meta.get("title") or "").strip()
    if not _plausible_title(title):
        title = _largest_text(pages[0]) if pages else ""
    doi = ""
    for field in ("subject", "keywords", "title"):
        m = DOI.search(meta.get(field) or "")
        if m:
            doi = m.group(1)
            break
    if not doi:
        for page in pages[:2]:
            m = DOI.search(page.text())
            if m:
                doi = m.group(1)
                break
    return " ".join(title.split()), doi.rstrip(".)]")


def _plausible_title(title: str) -> bool:
    words = [w for w in title.split() if sum(ch.isalpha() for ch in w) >= 3]
    low = title.lower()
    return len(words) >= 3 and not low.startswith(("microsoft word", "untitled")) \
        and not low.endswith((".doc", ".docx", ".pdf", ".tex", ".dvi"))


def _largest_text(page: PageLayout) -> str:
    """The lines set in the largest font on the top half of the first page (the title)."""
    lines = [ln for ln in page.lines if ln.bbox[1] < page.height / 2 and len(ln.text.strip()) > 1]
    if not lines:
        return ""
    biggest = max(ln.size for ln in lines)
    chosen = [ln for ln in lines if ln.size >= biggest - 0.5]
    return " ".join(ln.text.strip() for ln in sorted(chosen, key=lambda ln: (ln.bbox[1], ln.bbox[0])))
