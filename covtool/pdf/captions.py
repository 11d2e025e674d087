"""Caption detection: the pdffigures2 rule set, on PyMuPDF's text lines.

A caption starts a line with a figure or table label and a number ("Figure 3", "Fig. 2",
"FIGURE 1", "Fig 4", "Supplementary Figure S1", "Extended Data Fig. 5", "Table 2"). Mentions in
body text ("Figure 3 shows ...") are told apart from captions by the word after the number, and
duplicates of one (type, number) are resolved by the strength of the label, as pdffigures2 does.
The caption is then grown to its whole paragraph, with continuation lines and hyphenation joined.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from covtool.pdf.layout import Box, PageLayout, TextLine, union, x_overlap

CAPTION_START = re.compile(
    r"""^\s*(?P<prefix>(?:Supplementary|Supplemental|Extended\s+Data)\s+)?
        (?P<label>Figure|FIGURE|Fig\.?|FIG\.?|Table|TABLE|Scheme|SCHEME|Algorithm|ALGORITHM)
        \s*(?P<name>[SA-D]?\d+(?:\.\d+)?|[IVX]+)(?P<sub>[a-z](?![a-z])|[A-Z](?![A-Za-z]))?
        (?P<rest>.*)$""",
    re.VERBOSE,
)
_CONTINUED = re.compile(r"^[\s.:|—–-]*[(\[]?\s*(?:\.{3}|…)?\s*cont(?:inued|\.|'d)?\b", re.IGNORECASE)
_LIGATURES = {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
              "\u00ad": "", "\u2010": "-", "\u2011": "-"}
_PUNCT = ".:|—–-"
_CLOSING = ")]"
# body text naming a figure: its verb after panel letters or a parenthesis ("Figure 3 (right)
# shows", "Fig. 2a-c show", "Figure 4 (top panel) illustrates"); a caption's own panel text after
# a parenthesis ("Figure 1 (a) axial CT") is not a verb of this list
_MENTION = re.compile(
    r"^(?:[-–,]?\s*[a-zA-Z](?:\s*[-–,]\s*[a-zA-Z])*\s+|\([^)]{1,30}\)\s*)"
    r"(?:shows?|illustrates?|presents?|depicts?|demonstrates?|summari[sz]es?|compares?|displays?"
    r"|reports?|contains?|gives?|lists?|plots?|indicates?|reveals?|describes?|provides?"
    r"|highlights?|represents?|confirms?|suggests?)\b")   # after the number: the end of a parenthesised mention wrapped onto this line
_LABEL_INITIALS = set("FTSEA")
#: caption kinds other than figures: their regions are paired (so that no figure takes them) and
#: not written; tables and algorithms are captioned above their body, figures and schemes below
KINDS = {"tab": "table", "sch": "scheme", "alg": "algorithm"}
CAPTIONED_ABOVE = ("table", "algorithm")


@dataclass(frozen=True)
class Caption:
    """A figure or table caption on one page.

    ``kind`` is ``"figure"`` or ``"table"``; ``name`` the number as printed ("3", "S1");
    ``page`` 0-based; ``score`` the strength of its label (punctuation, bold, paragraph start).
    """

    kind: str
    name: str
    page: int
    bbox: Box
    text: str
    score: int = 0


def clean_text(text: str) -> str:
    """Ligatures undone, soft hyphens dropped, whitespace normalised to single spaces."""
    for k, v in _LIGATURES.items():
        text = text.replace(k, v)
    return " ".join(text.split())


def join_lines(lines: Sequence[str]) -> str:
    """Join caption lines into one line of text, undoing end-of-line hyphenation.

    ``"com-" + "pound"`` becomes ``"compound"`` (a word broken across lines); ``"33RE-" +
    "binding"`` stays ``"33RE-binding"`` (a hyphen that belongs to the text).
    """
    out = ""
    for raw in lines:
        line = clean_text(raw)
        if not line:
            continue
        if not out:
            out = line
        elif out.endswith("-") and len(out) > 1 and line[0].islower():
            word = re.search(r"(\S+)-$", out)
            if word and word.group(1).isalpha() and word.group(1)[-1].islower():
                out = out[:-1] + line      # broken word: drop the hyphen
            else:
                out = out + line           # compound: keep the hyphen, no space
        else:
            out = out + " " + line
    return out


def match_caption_start(text: str) -> tuple[str, str, int] | None:
    """``(kind, name, score)`` when a line starts a caption, else None.

    The word after the number decides: a caption goes on with punctuation, a capitalised word or
    nothing; a body-text mention goes on with a lower-case word ("Figure 3 shows").
    """
    # every label starts with F, T, S or E once spaces and soft hyphens are gone (what clean_text
    # drops before the start); most lines are not captions, so skip cleaning those
    if text[:1] not in _LABEL_INITIALS and text.replace("\u00ad", "").lstrip()[:1] not in _LABEL_INITIALS:
        return None
    text = clean_text(text)
    m = CAPTION_START.match(text)
    if not m:
        return None
    rest = m.group("rest")
    if rest and not rest[0].isspace() and rest[0] not in _PUNCT:
        return None                                   # "Figure3D-printed", "Table1x"
    stripped = rest.strip()
    if _CONTINUED.match(stripped):
        return None                                   # "Figure 2 (...continued)" is not a new caption
    if stripped and stripped[0] in _CLOSING:
        return None                                   # "(see" + "Fig. 3) by ...": a mention's end
    if _MENTION.match(stripped):
        return None                                   # "Figure 3 (right) shows", "Fig. 2a–c show"
    score = 0
    if stripped and stripped[0] in _PUNCT:
        score += 1
    elif stripped:
        first = stripped.split()[0]
        if first[0].islower() or first[0] in ",;":
            return None
        if first.lower() in {"and", "or", "to", "in"}:
            return None
    kind = KINDS.get(m.group("label").lower()[:3], "figure")
    name = m.group("name")
    prefix = (m.group("prefix") or "").strip().lower()
    if prefix.startswith("extended"):
        name = "ED" + name
    elif prefix and not name.startswith("S"):
        name = "S" + name              # "Supplementary Figure 1" is not "Figure 1"
    return kind, name, score


def may_hold_caption(text: str) -> bool:
    """False only when no line of ``text`` (a page's plain text, one text line a line, as MuPDF
    writes it) can start a caption, so that :func:`find_captions` would find none on the page:
    each line is tried alone and followed by the next (a label alone on its line may go on along
    the baseline)."""
    lines = [ln for ln in text.split("\n") if ln.strip()]      # as the page's lines: none blank
    for i, line in enumerate(lines):
        if match_caption_start(line):
            return True
        if i + 1 < len(lines) and match_caption_start(line + " " + lines[i + 1]):
            return True
    return False


def _blocks(lines: Sequence[TextLine]) -> dict[tuple[int, int], list[TextLine]]:
    """The page's text blocks, a block holding captions side by side split into its columns."""
    raw: dict[int, list[TextLine]] = {}
    for ln in lines:
        raw.setdefault(ln.block, []).append(ln)
    blocks: dict[tuple[int, int], list[TextLine]] = {}
    for bi, blines in raw.items():
        for k, part in enumerate(_split_columns(blines)):
            blocks[(bi, k)] = part
    return blocks


def _split_columns(blines: list[TextLine]) -> list[list[TextLine]]:
    """A block whose caption starts lie side by side (two figures' captions, which MuPDF can
    merge into one block when their lines share baselines) -> one block per column, each line
    going to the column its left edge falls in; any other block unchanged."""
    heads = sorted((ln for ln in blines if match_caption_start(ln.text)), key=lambda ln: ln.bbox[0])
    edges: list[float] = []        # left edges of the columns
    right = 0.0                    # right end of the current column's caption starts
    for ln in heads:
        if not edges or ln.bbox[0] >= right - 1:
            edges.append(ln.bbox[0])
            right = ln.bbox[2]
        else:
            right = max(right, ln.bbox[2])
    if len(edges) < 2:
        return [blines]
    parts: list[list[TextLine]] = [[] for _ in edges]
    for ln in blines:
        k = max([i for i, e in enumerate(edges) if ln.bbox[0] >= e - 2], default=0)
        parts[k].append(ln)
    return [p for p in parts if p]


def _horizontal(ln: TextLine) -> bool:
    return ln.bbox[2] - ln.bbox[0] >= ln.bbox[3] - ln.bbox[1] or len(ln.text.strip()) <= 2


def find_captions(page: PageLayout, max_line_height: float = 60.0) -> list[Caption]:
    """Every caption on a page, grown to its paragraph.

    Parameters
    ----------
    page : PageLayout
        The page's text lines (with their block numbers).
    max_line_height : float
        Lines taller than this (points) are not caption starts (pdffigures2 drops > 60 pt).

    Returns
    -------
    list of Caption
        In reading order; text joined into one line.
    """
    blocks = _blocks(page.lines)
    order = sorted(blocks, key=lambda b: blocks[b][0].bbox[1])
    captions: list[Caption] = []
    used: set[tuple[int, int]] = set()
    for bi in order:
        blines = blocks[bi]
        for i, ln in enumerate(blines):
            if not _horizontal(ln) or ln.bbox[3] - ln.bbox[1] > max_line_height:
                continue
            # a label alone on its line may be followed by the text on the same baseline
            head = ln.text
            if i + 1 < len(blines) and abs(blines[i + 1].bbox[1] - ln.bbox[1]) < 0.5 * (ln.bbox[3] - ln.bbox[1]):
                head = ln.text + " " + blines[i + 1].text
            found = match_caption_start(head)
            if not found:
                continue
            kind, name, score = found
            score += int(ln.bold) + int(i == 0)
            body = list(blines[i:])
            # stop at the next caption start within the same block
            for j in range(1, len(body)):
                if match_caption_start(body[j].text) and body[j].bbox[0] <= body[0].bbox[0] + 2:
                    body = body[:j]
                    break
            if len(body) == 1 and _label_only(head):
                # the label set as a block of its own, its text in the next block along the line
                beside = _text_beside(blocks, order, bi, body[0], used)
                if beside is not None:
                    body += blocks[beside]
                    used.add(beside)
            body += _continuation_blocks(blocks, order, bi, body, used)
            text = join_lines([b.text for b in body])
            captions.append(Caption(kind, name, page.number, union(b.bbox for b in body), text, score))
            used.add(bi)
            break
    return captions


def _label_only(text: str) -> bool:
    """The line is a caption's label alone ("Fig. 1.", "Figure 2 |"), without its text."""
    m = CAPTION_START.match(clean_text(text))
    return m is not None and not m.group("rest").strip(" " + _PUNCT)


def _text_beside(blocks: dict[tuple[int, int], list[TextLine]], order: list[tuple[int, int]],
                 start: tuple[int, int], label: TextLine,
                 used: set[tuple[int, int]]) -> tuple[int, int] | None:
    """The block that goes on along a lone label's baseline: its first line starts on the
    label's line (top within half a line height) just right of it (within three line heights)."""
    h = max(label.bbox[3] - label.bbox[1], 1.0)
    best = None
    for bi in order:
        if bi == start or bi in used:
            continue
        first = blocks[bi][0]
        dx = first.bbox[0] - label.bbox[2]
        if abs(first.bbox[1] - label.bbox[1]) < 0.5 * h and -2 <= dx <= 3 * h \
                and not match_caption_start(first.text) and (best is None or dx < best[0]):
            best = (dx, bi)
    return None if best is None else best[1]


def _continuation_blocks(blocks: dict[tuple[int, int], list[TextLine]], order: list[tuple[int, int]],
                         start: tuple[int, int], body: list[TextLine],
                         used: set[tuple[int, int]]) -> list[TextLine]:
    """Following blocks that continue the caption paragraph (same column, no gap, same size)."""
    out: list[TextLine] = []
    last = body[-1]
    size = sum(b.size for b in body) / len(body)
    box = union(b.bbox for b in body)
    for bi in order[order.index(start) + 1:]:
        cand = blocks[bi]
        first = cand[0]
        if x_overlap(first.bbox, box) < 0.5:
            continue                      # another column
        dy = first.bbox[1] - last.bbox[3]
        line_h = max(last.bbox[3] - last.bbox[1], 1.0)
        if (bi in used or match_caption_start(first.text) or dy < -1 or dy > 0.6 * line_h
                or abs(first.size - size) > 0.6):
            break
        out.extend(cand)
        last = cand[-1]
        box = union([box, *(c.bbox for c in cand)])
    return out


def deduplicate(captions: Sequence[Caption]) -> list[Caption]:
    """Keep, for each (kind, name), the candidates with the strongest label (pdffigures2's filters).

    A (kind, name) with more than 3 equally strong candidates is dropped, as pdffigures2 does:
    such a label is a running mention, not a caption.
    """
    groups: dict[tuple[str, str], list[Caption]] = {}
    for c in captions:
        groups.setdefault((c.kind, c.name), []).append(c)
    keep: list[Caption] = []
    for group in groups.values():
        best = max(c.score for c in group)
        top = [c for c in group if c.score == best]
        if len(top) > 3:
            continue
        keep.extend(top)
    order = {id(c): i for i, c in enumerate(captions)}
    return sorted(keep, key=lambda c: order[id(c)])
