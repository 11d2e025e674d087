"""Figure regions on a page: embedded rasters and vector drawings, page furniture removed,
nearby pieces grouped into one figure.

Pure functions on :class:`~covtool.pdf.layout.PageLayout`; no PyMuPDF here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from covtool.pdf.captions import Caption
from covtool.pdf.layout import (
    Box,
    ImagePlacement,
    PageLayout,
    TextLine,
    area,
    contained_in_any,
    contains,
    gap,
    height,
    union,
    width,
)

DEFAULT_MIN_SIZE = 36.0      # pt: a figure's shorter side (half an inch); logos and rules are smaller
DEFAULT_GAP = 10.0           # pt: pieces closer than this are one figure (panel gutters)
DEFAULT_REPEAT = 3           # pages: an image or drawing repeated on this many pages is furniture


@dataclass(frozen=True)
class FigureOptions:
    """Thresholds of the figure finder (all in PDF points, except ``repeat``)."""

    min_size: float = DEFAULT_MIN_SIZE
    gap: float = DEFAULT_GAP
    repeat: int = DEFAULT_REPEAT
    min_piece: float = 4.0       # pieces thinner than this are rules and hairlines
    max_page_fraction: float = 0.85   # drawings covering more of the page are backgrounds/frames


@dataclass
class Region:
    """A candidate figure: its box, the images and drawings in it."""

    bbox: Box
    images: list[ImagePlacement] = field(default_factory=list)
    drawings: list[Box] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """``raster`` (images cover >= 90% of it), ``vector`` (no image) or ``mixed``."""
        if not self.images:
            return "vector"
        covered = area(union(i.bbox for i in self.images))
        return "raster" if covered >= 0.9 * area(self.bbox) else "mixed"


def furniture(pages: Sequence[PageLayout], repeat: int = DEFAULT_REPEAT) -> tuple[set[str], set[tuple]]:
    """Image digests and drawing boxes repeated on ``repeat`` or more pages (logos, banners, rules).

    In a document with fewer pages than ``repeat``, something on every page (2 at least) counts.
    """
    need = max(2, min(repeat, len(pages)))
    img_pages: Counter = Counter()
    draw_pages: Counter = Counter()
    for p in pages:
        img_pages.update({i.digest for i in p.images if i.digest})
        draw_pages.update({_draw_key(d) for d in p.drawings})
    if len(pages) < 2:
        return set(), set()
    return ({d for d, n in img_pages.items() if n >= need},
            {k for k, n in draw_pages.items() if n >= need})


def _draw_key(b: Box) -> tuple:
    return tuple(round(v / 2) for v in b)


def body_blocks(lines: Sequence[TextLine], captions: Sequence[Caption]) -> list[Box]:
    """Boxes of body-text blocks: paragraphs (>= 2 lines and >= 60 characters) or long lines,
    not inside a caption. Figure labels and axis text are short and stay out. A block's lines
    inside a caption are not body text (MuPDF may put a caption and a figure's axis label in one
    block): the rest of the block is judged alone."""
    blocks: dict[int, list[TextLine]] = {}
    for ln in lines:
        if not any(contains(c.bbox, ln.bbox, 0.5) for c in captions):
            blocks.setdefault(ln.block, []).append(ln)
    out = []
    for blines in blocks.values():
        chars = sum(len(ln.text.strip()) for ln in blines)
        if chars >= 60:
            out.append(union(ln.bbox for ln in blines))
    return out


def _subtract_captions(box: Box, captions: Sequence[Caption]) -> Box | None:
    """A drawing that holds a caption keeps only its larger side of the caption, if that side is
    a real part of it (a frame around figure and caption); a shaded caption box disappears."""
    for c in captions:
        if not contains(box, c.bbox, 0.5):
            continue
        above = (box[0], box[1], box[2], c.bbox[1])
        below = (box[0], c.bbox[3], box[2], box[3])
        side = above if height(above) >= height(below) else below
        if area(side) < 0.25 * area(box) or height(side) <= 0:
            return None
        box = side
    return box


def page_pieces(page: PageLayout, captions: Sequence[Caption], options: FigureOptions,
                furniture_digests: set[str] = frozenset(),
                furniture_drawings: set[tuple] = frozenset()) -> list[Region]:
    """The raster and vector pieces of a page that may belong to figures, one region each."""
    pieces: list[Region] = []
    page_area = page.width * page.height
    for img in page.images:
        if img.digest in furniture_digests:
            continue
        if min(width(img.bbox), height(img.bbox)) < options.min_piece:
            continue
        clipped = (max(img.bbox[0], 0.0), max(img.bbox[1], 0.0),
                   min(img.bbox[2], page.width), min(img.bbox[3], page.height))
        if area(clipped) <= 0:
            continue
        pieces.append(Region(clipped, images=[img]))
    for d in page.drawings:
        if _draw_key(d) in furniture_drawings:
            continue
        if min(width(d), height(d)) < options.min_piece or area(d) > options.max_page_fraction * page_area:
            continue
        kept = _subtract_captions(d, captions)
        if kept is None or min(width(kept), height(kept)) < options.min_piece:
            continue
        pieces.append(Region(kept, drawings=[kept]))
    return pieces


def _blocked(a: Box, b: Box, obstacles: Sequence[Box]) -> bool:
    """True when an obstacle (caption, body text) lies between two boxes, in their union but
    outside both."""
    u = union([a, b])
    for o in obstacles:
        cx, cy = (o[0] + o[2]) / 2, (o[1] + o[3]) / 2
        inside_u = u[0] <= cx <= u[2] and u[1] <= cy <= u[3]
        in_a = a[0] <= cx <= a[2] and a[1] <= cy <= a[3]
        in_b = b[0] <= cx <= b[2] and b[1] <= cy <= b[3]
        if inside_u and not in_a and not in_b:
            return True
    return False


def group_pieces(pieces: Sequence[Region], obstacles: Sequence[Box], max_gap: float) -> list[Region]:
    """Merge pieces closer than ``max_gap`` (and overlapping ones) into regions, never across a
    caption or body text; repeated until nothing merges."""
    regions = [Region(p.bbox, list(p.images), list(p.drawings)) for p in pieces]
    changed = True
    while changed:
        changed = False
        for i in range(len(regions)):
            for j in range(i + 1, len(regions)):
                a, b = regions[i], regions[j]
                if gap(a.bbox, b.bbox) > max_gap or _blocked(a.bbox, b.bbox, obstacles):
                    continue
                regions[i] = Region(union([a.bbox, b.bbox]), a.images + b.images, a.drawings + b.drawings)
                del regions[j]
                changed = True
                break
            if changed:
                break
    return regions


def add_labels(region: Region, lines: Sequence[TextLine], taken: Sequence[Box], max_gap: float) -> Region:
    """Grow a region over the short text lines touching it (panel letters, axis labels, legends),
    never over captions or body text (``taken``)."""
    box = region.bbox
    for _ in range(3):
        grown = box
        for ln in lines:
            if contained_in_any(taken, ln.bbox, 0.5):
                continue
            if contains(box, ln.bbox, 0.99):
                continue
            if gap(box, ln.bbox) <= max_gap:
                grown = union([grown, ln.bbox])
        if grown == box:
            break
        box = grown
    return Region(box, region.images, region.drawings)


def find_regions(page: PageLayout, captions: Sequence[Caption], options: FigureOptions = FigureOptions(),
                 furniture_digests: set[str] = frozenset(),
                 furniture_drawings: set[tuple] = frozenset(),
                 body: Sequence[Box] | None = None) -> list[Region]:
    """Candidate figure regions of one page, before pairing with captions.

    Parameters
    ----------
    page : PageLayout
    captions : sequence of Caption
        This page's captions (figures and tables): obstacles, and removed from drawings.
    options : FigureOptions
    furniture_digests, furniture_drawings : sets
        From :func:`furniture` over the whole document.
    body : sequence of Box, optional
        ``body_blocks(page.lines, captions)`` when the caller has it already.

    Returns
    -------
    list of Region
        Top-to-bottom; regions whose shorter side is under ``options.min_size`` are dropped.
    """
    if body is None:
        body = body_blocks(page.lines, captions)
    obstacles = [c.bbox for c in captions] + list(body)
    pieces = page_pieces(page, captions, options, furniture_digests, furniture_drawings)
    # pieces lying inside body text (highlight boxes, table rules behind text) are not figures
    pieces = [p for p in pieces if p.images or not contained_in_any(body, p.bbox, 0.8)]
    regions = group_pieces(pieces, obstacles, options.gap)
    if regions:   # lines free of captions and body text, found once for all regions and passes
        labels = [ln for ln in page.lines if not contained_in_any(obstacles, ln.bbox, 0.5)]
        regions = [add_labels(r, labels, (), options.gap) for r in regions]
    regions = group_pieces(regions, obstacles, options.gap)
    regions = [r for r in regions if min(width(r.bbox), height(r.bbox)) >= options.min_size]
    return sorted(regions, key=lambda r: (r.bbox[1], r.bbox[0]))
