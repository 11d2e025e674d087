"""The page model the algorithms work on: boxes, text lines, image placements, drawings.

Coordinates are PDF points (1/72 inch) with the origin at the top-left of the page, as PyMuPDF
gives them; a box is ``(x0, y0, x1, y1)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class TextLine:
    """One line of text: its box, text, font size, boldness and the block it belongs to."""

    bbox: Box
    text: str
    size: float = 10.0
    bold: bool = False
    block: int = 0
    turn: int = 0      # writing direction in quarter turns: 0 left to right, 1 up, 2 leftwards, 3 down


@dataclass(frozen=True)
class ImagePlacement:
    """An image as drawn on a page (one placement of one image).

    ``xref`` is 0 for inline images; ``digest`` identifies the pixels (repeated logos share it).
    """

    bbox: Box
    xref: int
    width: int
    height: int
    digest: str = ""


@dataclass
class PageLayout:
    """Everything the figure finder needs to know about one page. ``number`` is 0-based."""

    number: int
    width: float
    height: float
    lines: list[TextLine] = field(default_factory=list)
    images: list[ImagePlacement] = field(default_factory=list)
    drawings: list[Box] = field(default_factory=list)
    lines_read: bool = True      # False: the text was not read (no caption could start on it)
    plain: str = ""              # the plain text, where it was read instead of the lines

    def text(self) -> str:
        """The page's text as read: its lines, one a line, or its plain text without them."""
        return "\n".join(ln.text for ln in self.lines) if self.lines_read else self.plain


def width(b: Box) -> float:
    return b[2] - b[0]


def height(b: Box) -> float:
    return b[3] - b[1]


def area(b: Box) -> float:
    return max(0.0, width(b)) * max(0.0, height(b))


def union(boxes: Iterable[Box]) -> Box:
    boxes = list(boxes)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def intersection(a: Box, b: Box) -> Box | None:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def overlap_area(a: Box, b: Box) -> float:
    inter = intersection(a, b)
    return area(inter) if inter else 0.0


def iou(a: Box, b: Box) -> float:
    inter = overlap_area(a, b)
    total = area(a) + area(b) - inter
    return inter / total if total > 0 else 0.0


def gap(a: Box, b: Box) -> float:
    """The distance between two boxes (0 when they touch or overlap)."""
    dx = max(0.0, max(a[0], b[0]) - min(a[2], b[2]))
    dy = max(0.0, max(a[1], b[1]) - min(a[3], b[3]))
    return max(dx, dy) if min(dx, dy) == 0 else (dx * dx + dy * dy) ** 0.5


def x_overlap(a: Box, b: Box) -> float:
    """Horizontal overlap as a share of the narrower box (0..1)."""
    ov = min(a[2], b[2]) - max(a[0], b[0])
    narrow = min(width(a), width(b))
    return max(0.0, ov) / narrow if narrow > 0 else 0.0


def y_overlap(a: Box, b: Box) -> float:
    ov = min(a[3], b[3]) - max(a[1], b[1])
    low = min(height(a), height(b))
    return max(0.0, ov) / low if low > 0 else 0.0


def contains(outer: Box, inner: Box, frac: float = 0.5) -> bool:
    """True when at least ``frac`` of ``inner``'s area lies inside ``outer``."""
    # area(inner) and overlap_area(outer, inner) written out: the figure finder calls this for
    # every text line against every caption and body block
    a = max(0.0, inner[2] - inner[0]) * max(0.0, inner[3] - inner[1])
    if not a > 0:
        return False
    x0, y0 = max(outer[0], inner[0]), max(outer[1], inner[1])
    x1, y1 = min(outer[2], inner[2]), min(outer[3], inner[3])
    overlap = (x1 - x0) * (y1 - y0) if x0 < x1 and y0 < y1 else 0.0
    return overlap >= frac * a


def contained_in_any(outers: Iterable[Box], inner: Box, frac: float = 0.5) -> bool:
    """``any(contains(o, inner, frac) for o in outers)``, in one loop (the same arithmetic)."""
    a = max(0.0, inner[2] - inner[0]) * max(0.0, inner[3] - inner[1])
    if not a > 0:
        return False
    need = frac * a
    ix0, iy0, ix1, iy1 = inner
    for o in outers:
        x0, y0, x1, y1 = max(o[0], ix0), max(o[1], iy0), min(o[2], ix1), min(o[3], iy1)
        if ((x1 - x0) * (y1 - y0) if x0 < x1 and y0 < y1 else 0.0) >= need:
            return True
    return False


def center(b: Box) -> tuple[float, float]:
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2


def format_box(b: Box) -> str:
    """``x0,y0,x1,y1`` rounded to 0.1 pt, as written in manifests."""
    return ",".join(f"{v:.1f}" for v in b)


def line_turn(direction: tuple[float, float]) -> int:
    """A text line's writing direction (MuPDF's ``dir``, y down) as quarter turns
    (:attr:`TextLine.turn`)."""
    dx, dy = direction
    if abs(dx) >= abs(dy):
        return 0 if dx >= 0 else 2
    return 1 if dy < 0 else 3


def turn_box(b: Box, turn: int, w: float, h: float) -> Box:
    """A box of a ``w`` x ``h`` page in the frame turned so that text written in direction
    ``turn`` reads left to right (a landscape figure on a portrait page, a /Rotate'd page)."""
    x0, y0, x1, y1 = b
    if turn == 1:
        return (h - y1, x0, h - y0, x1)
    if turn == 2:
        return (w - x1, h - y1, w - x0, h - y0)
    if turn == 3:
        return (y0, w - x1, y1, w - x0)
    return b


def unturn_box(b: Box, turn: int, w: float, h: float) -> Box:
    """The inverse of :func:`turn_box` (``w``, ``h``: the page's own size)."""
    a0, b0, a1, b1 = b
    if turn == 1:
        return (b0, h - a1, b1, h - a0)
    if turn == 2:
        return (w - a1, h - b1, w - a0, h - b0)
    if turn == 3:
        return (w - b1, a0, w - b0, a1)
    return b


def page_turn(lines: Iterable[TextLine]) -> int:
    """The writing direction of most of a page's text (by characters): 0 on nearly every page;
    1 or 3 on a landscape page set sideways on a portrait one (or shown turned by /Rotate)."""
    chars = [0, 0, 0, 0]
    for ln in lines:
        chars[ln.turn % 4] += len(ln.text.strip())
    best = max(range(4), key=lambda k: chars[k])
    return best if chars[best] > 0.5 * sum(chars) else 0


def turned(page: PageLayout, turn: int) -> PageLayout:
    """The page in the frame of :func:`turn_box` (its text lines, images and drawings)."""
    from dataclasses import replace

    w, h = page.width, page.height
    size = (h, w) if turn % 2 else (w, h)
    return replace(
        page, width=size[0], height=size[1],
        lines=[replace(ln, bbox=turn_box(ln.bbox, turn, w, h), turn=(ln.turn - turn) % 4)
               for ln in page.lines],
        images=[replace(im, bbox=turn_box(im.bbox, turn, w, h)) for im in page.images],
        drawings=[turn_box(d, turn, w, h) for d in page.drawings])
