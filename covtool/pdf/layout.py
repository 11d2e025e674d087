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
