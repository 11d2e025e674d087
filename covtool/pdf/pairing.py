"""Figure–caption pairing, pdffigures2-style: each caption takes the nearest region above or
below it in the same column, with nothing (another caption, body text) in between.

Pairs are chosen globally, cheapest first (a greedy version of deepfigures' assignment), so that
two captions never fight over one figure. Figure captions prefer the region above them, table
captions the region below (tables are captioned on top). Regions left over that continue a
paired figure on the same side of its caption (the rest of a grid of panels) join it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from covtool.pdf.captions import CAPTIONED_ABOVE, Caption
from covtool.pdf.figures import Region
from covtool.pdf.layout import Box, area, height, overlap_area, union, x_overlap, y_overlap

DEFAULT_MAX_DISTANCE = 0.3      # of the page height: a caption further from a region is not its
WRONG_SIDE_PENALTY = 24.0       # pt added when a figure caption sits above its figure
MIN_BESIDE_OVERLAP = 0.5        # a side caption's vertical overlap with its figure (of the shorter)


@dataclass
class Figure:
    """A figure (or table) region with its caption; ``caption`` is None for uncaptioned figures."""

    region: Region
    caption: Caption | None
    page: int

    @property
    def is_table(self) -> bool:
        return self.caption is not None and self.caption.kind == "table"

    @property
    def is_figure(self) -> bool:
        """Written by extract: captioned as a figure, or not captioned (not a table, scheme or
        algorithm)."""
        return self.caption is None or self.caption.kind == "figure"


def _side(region: Box, caption: Box) -> tuple[str, float] | None:
    """Which side of the caption the region is on, and the vertical distance."""
    if region[3] <= caption[1] + 2:
        return "above", max(0.0, caption[1] - region[3])
    if region[1] >= caption[3] - 2:
        return "below", max(0.0, region[1] - caption[3])
    return None


def _between(a: Box, b: Box, obstacles: Sequence[Box]) -> bool:
    """An obstacle in the vertical band between two boxes, overlapping both horizontally."""
    top, bottom = (a, b) if a[3] <= b[1] + 2 else (b, a)
    y0, y1 = top[3], bottom[1]
    x0, x1 = max(a[0], b[0]), min(a[2], b[2])
    for o in obstacles:
        if o[1] >= y0 - 1 and o[3] <= y1 + 1 and o[0] < x1 and o[2] > x0:
            return True
    return False


def pair_page(regions: Sequence[Region], captions: Sequence[Caption], page_height: float,
              page_number: int = 0, obstacles: Sequence[Box] = (), max_distance: float = DEFAULT_MAX_DISTANCE,
              min_x_overlap: float = 0.5) -> list[Figure]:
    """Pair the regions and captions of one page.

    Parameters
    ----------
    regions : sequence of Region
    captions : sequence of Caption
        Figure and table captions of the page.
    page_height : float
        In points; ``max_distance`` is a share of it.
    page_number : int
        0-based, stored on the figures.
    obstacles : sequence of Box
        Body-text blocks; a pair with body text between region and caption is not made.
    min_x_overlap : float
        Share of the narrower of region and caption that must overlap horizontally ("same column").

    Returns
    -------
    list of Figure
        One per region (regions merged into a grid count once); table regions included
        (``is_table``), uncaptioned regions with ``caption=None``. Top-to-bottom.
    """
    limit = max_distance * page_height
    cands = []
    for ri, r in enumerate(regions):
        for ci, c in enumerate(captions):
            if x_overlap(r.bbox, c.bbox) < min_x_overlap:
                continue
            side = _side(r.bbox, c.bbox)
            if side is None:
                continue
            where, dist = side
            if dist > limit:
                continue
            others = [o.bbox for k, o in enumerate(captions) if k != ci]
            if c.kind not in CAPTIONED_ABOVE:
                # a table's own header text sits between its caption and its body
                others += list(obstacles)
            if _between(r.bbox, c.bbox, others):
                continue
            preferred = "below" if c.kind in CAPTIONED_ABOVE else "above"
            cost = dist + (0.0 if where == preferred else WRONG_SIDE_PENALTY)
            cands.append((cost, ri, ci, where))
    cands.sort()
    region_of: dict[int, int] = {}
    side_of: dict[int, str] = {}
    taken: set[int] = set()
    for _cost, ri, ci, where in cands:
        if ri in taken or ci in region_of:
            continue
        region_of[ci] = ri
        side_of[ci] = where
        taken.add(ri)
    merged: dict[int, Region] = {ci: regions[ri] for ci, ri in region_of.items()}
    _absorb_leftovers(regions, captions, merged, side_of, taken, list(obstacles))
    _pair_beside(regions, captions, merged, taken, list(obstacles), limit)
    figures = [Figure(merged[ci], captions[ci], page_number) for ci in merged]
    for ri, r in enumerate(regions):
        if ri not in taken:
            figures.append(Figure(r, None, page_number))
    return sorted(figures, key=lambda f: (f.region.bbox[1], f.region.bbox[0]))


def _absorb_leftovers(regions: Sequence[Region], captions: Sequence[Caption], merged: dict[int, Region],
                      side_of: dict[int, str], taken: set[int], obstacles: list[Box],
                      chain_gap: float = 30.0) -> None:
    """Unpaired regions that continue a paired figure away from its caption (more rows of a
    panel grid, a table made of images) join that figure."""
    changed = True
    while changed:
        changed = False
        for ri, r in enumerate(regions):
            if ri in taken:
                continue
            for ci, fig in merged.items():
                c = captions[ci]
                side = _side(r.bbox, c.bbox)
                if side is None or side[0] != side_of[ci]:
                    continue
                span = (min(c.bbox[0], fig.bbox[0]), 0, max(c.bbox[2], fig.bbox[2]), 1)
                inside = max(0.0, min(r.bbox[2], span[2]) - max(r.bbox[0], span[0]))
                if inside < 0.8 * (r.bbox[2] - r.bbox[0]):
                    continue
                # within the figure's reach away from the caption, extended by chain_gap
                if side[0] == "above" and r.bbox[3] < fig.bbox[1] - chain_gap:
                    continue
                if side[0] == "below" and r.bbox[1] > fig.bbox[3] + chain_gap:
                    continue
                others = [o.bbox for k, o in enumerate(captions) if k != ci]
                if c.kind not in CAPTIONED_ABOVE:
                    others += obstacles
                if _between(r.bbox, fig.bbox, others) and height(r.bbox) > 0:
                    continue
                merged[ci] = Region(union([fig.bbox, r.bbox]), fig.images + r.images, fig.drawings + r.drawings)
                taken.add(ri)
                changed = True
                break


def _beside(region: Box, caption: Box) -> tuple[str, float] | None:
    """Which side (``left``/``right``) of the caption the region is on, with nothing of either
    above the other, and the horizontal distance."""
    if region[0] >= caption[2] - 2:
        return "right", max(0.0, region[0] - caption[2])
    if region[2] <= caption[0] + 2:
        return "left", max(0.0, caption[0] - region[2])
    return None


def _crossed(box: Box, obstacles: Sequence[Box]) -> bool:
    """An obstacle lies (mostly) inside ``box``."""
    return any(overlap_area(box, o) > 0.5 * max(1e-9, area(o)) for o in obstacles)


def _pair_beside(regions: Sequence[Region], captions: Sequence[Caption], merged: dict[int, Region],
                 taken: set[int], obstacles: list[Box], limit: float) -> None:
    """Captions set in a side column beside their figure (as Nature sets them), paired after
    every caption above or below its figure has been: a caption left without a figure takes the
    nearest free region beside it that overlaps it vertically, with no text between, and then
    every free region on that side that the figure's box, grown to it, takes in without
    swallowing body text or another caption (the pieces of a multi-panel figure)."""
    cands = []
    for ci, c in enumerate(captions):
        if ci in merged:
            continue
        others = [o.bbox for k, o in enumerate(captions) if k != ci] + obstacles
        for ri, r in enumerate(regions):
            if ri in taken:
                continue
            side = _beside(r.bbox, c.bbox)
            if side is None or side[1] > limit or y_overlap(r.bbox, c.bbox) < MIN_BESIDE_OVERLAP:
                continue
            # nothing in the band between them
            lo, hi = (c.bbox[2], r.bbox[0]) if side[0] == "right" else (r.bbox[2], c.bbox[0])
            y0, y1 = max(r.bbox[1], c.bbox[1]), min(r.bbox[3], c.bbox[3])
            if any(o[0] >= lo - 1 and o[2] <= hi + 1 and o[1] < y1 and o[3] > y0 for o in others):
                continue
            cands.append((side[1], ri, ci, side[0]))
    cands.sort()
    for _dist, ri, ci, where in cands:
        if ri in taken or ci in merged:
            continue
        taken.add(ri)
        fig = regions[ri]
        c = captions[ci]
        others = [o.bbox for k, o in enumerate(captions) if k != ci] + obstacles
        changed = True
        while changed:       # the other pieces of the figure on that side
            changed = False
            for rj, r in enumerate(regions):
                side = None if rj in taken else _beside(r.bbox, c.bbox)
                if side is None or side[0] != where:
                    continue
                grown = union([fig.bbox, r.bbox])
                reach = (min(c.bbox[1], fig.bbox[1]), max(c.bbox[3], fig.bbox[3]))
                if r.bbox[3] < reach[0] or r.bbox[1] > reach[1] or _crossed(grown, others):
                    continue
                fig = Region(grown, fig.images + r.images, fig.drawings + r.drawings)
                taken.add(rj)
                changed = True
        merged[ci] = fig
