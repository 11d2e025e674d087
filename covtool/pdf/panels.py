"""Splitting a compound figure into its panels along white or black gutters.

Recursive XY-cut on projection profiles: a row (column) is a gutter when, after small marks are
removed, it holds no foreground against a white background or none against a black one (CT
panels often sit on black). Interior gutter runs at least ``min_gap`` long cut the figure; the
pieces are cut again along the other axis until nothing changes. Small connected components
(panel letters "A", "B", scale-bar text) are ignored when finding gutters so they do not bridge
them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PixelBox = tuple[int, int, int, int]   # x0, y0, x1, y1 (half-open), pixels


@dataclass(frozen=True)
class PanelOptions:
    """Thresholds of the gutter finder.

    ``tolerance``: grey levels from pure white (255) or black (0) still counted as background;
    ``min_gap``: shortest gutter, a share of the image side (at least 2 px);
    ``min_panel``: smallest panel side, a share of the figure's side;
    ``label_size``: marks smaller than this share of the shorter side are labels, not content;
    ``fill``: share of a line that may be foreground and still count as gutter.
    """

    tolerance: int = 24
    min_gap: float = 0.01
    min_panel: float = 0.15
    label_size: float = 0.08
    fill: float = 0.002


def to_gray8(img: np.ndarray) -> np.ndarray:
    """Any image (H, W) or (H, W, C), uint8/uint16/float, as (H, W) uint8 grey."""
    a = np.asarray(img)
    if a.ndim == 3:
        a = a[..., :3].mean(axis=2) if a.shape[2] >= 3 else a[..., 0]
    a = a.astype(np.float64)
    if np.asarray(img).dtype == np.uint8:
        return a.astype(np.uint8)
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return np.rint((a - lo) / (hi - lo) * 255).astype(np.uint8)


def _clean(fg: np.ndarray, label_px: int) -> np.ndarray:
    """Foreground without the components smaller than ``label_px`` on both sides."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    small = (stats[:, cv2.CC_STAT_WIDTH] < label_px) & (stats[:, cv2.CC_STAT_HEIGHT] < label_px)
    small[0] = True  # background label
    return ~small[labels]


def _gutters(masks: list[np.ndarray], axis: int, fill: float) -> np.ndarray:
    """Lines (rows for axis=1) free of foreground in at least one of the masks."""
    out = None
    for m in masks:
        g = m.mean(axis=axis) <= fill
        out = g if out is None else (out | g)
    return out


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, f in enumerate(flags):
        if f and start is None:
            start = i
        elif not f and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(flags)))
    return runs


def _segments(flags: np.ndarray, min_gap: int) -> list[tuple[int, int]]:
    """Content segments between interior gutters of at least ``min_gap``; border margins trimmed."""
    n = len(flags)
    content = np.flatnonzero(~flags)
    if content.size == 0:
        return []
    lo, hi = int(content[0]), int(content[-1]) + 1
    cuts = [(a, b) for a, b in _runs(flags[lo:hi]) if b - a >= min_gap]
    segs, start = [], lo
    for a, b in cuts:
        segs.append((start, lo + a))
        start = lo + b
    segs.append((start, hi))
    return [(max(0, s), min(n, e)) for s, e in segs if e > s]


def split_panels(img: np.ndarray, options: PanelOptions = PanelOptions()) -> list[PixelBox]:
    """Panel boxes of a compound figure.

    Parameters
    ----------
    img : ndarray (H, W) or (H, W, C)
        The figure; any dtype (scaled to 8-bit grey internally).
    options : PanelOptions

    Returns
    -------
    list of (x0, y0, x1, y1)
        Half-open pixel boxes in reading order (rows top to bottom, then left to right). One box
        (the content's extent) when the figure has no gutters; empty for a blank image.
    """
    gray = to_gray8(img)
    h, w = gray.shape
    label_px = max(3, int(options.label_size * min(h, w)))
    tol = options.tolerance
    fg_white = _clean(gray < 255 - tol, label_px)    # content against a white background
    fg_black = _clean(gray > tol, label_px)          # content against a black background
    boxes: list[PixelBox] = []
    _xy_cut(fg_white, fg_black, (0, 0, w, h), options, boxes, axis=0, depth=0, full=(w, h))
    boxes.sort(key=lambda b: (b[1], b[0]))
    return _reading_order(boxes)


def _xy_cut(fw: np.ndarray, fb: np.ndarray, box: PixelBox, options: PanelOptions,
            out: list[PixelBox], axis: int, depth: int, full: tuple[int, int]) -> None:
    x0, y0, x1, y1 = box
    sw, sb = fw[y0:y1, x0:x1], fb[y0:y1, x0:x1]
    found_cut = False
    for ax in (axis, 1 - axis):
        # ax=0: cut along rows (horizontal gutters); ax=1: along columns
        flags = _gutters([sw, sb], axis=1 if ax == 0 else 0, fill=options.fill)
        size = full[1] if ax == 0 else full[0]
        min_gap = max(2, int(round(options.min_gap * size)))
        segs = _segments(flags, min_gap)
        if not segs:
            return
        min_side = options.min_panel * size
        segs = [s for s in segs if s[1] - s[0] >= min_side] or segs
        if len(segs) > 1 and depth < 8:
            for s, e in segs:
                sub = (x0, y0 + s, x1, y0 + e) if ax == 0 else (x0 + s, y0, x0 + e, y1)
                _xy_cut(fw, fb, sub, options, out, 1 - ax, depth + 1, full)
            found_cut = True
            break
        # trim the margins along this axis before trying the other one
        s, e = segs[0][0], segs[-1][1]
        x0, y0, x1, y1 = (x0, y0 + s, x1, y0 + e) if ax == 0 else (x0 + s, y0, x0 + e, y1)
        sw, sb = fw[y0:y1, x0:x1], fb[y0:y1, x0:x1]
    if not found_cut and x1 > x0 and y1 > y0:
        out.append((x0, y0, x1, y1))


def _reading_order(boxes: list[PixelBox]) -> list[PixelBox]:
    """Rows of panels top to bottom (panels whose vertical spans overlap share a row), each row
    left to right."""
    rows: list[list[PixelBox]] = []
    for b in sorted(boxes, key=lambda b: b[1]):
        for row in rows:
            r = row[0]
            if min(r[3], b[3]) - max(r[1], b[1]) > 0.5 * min(r[3] - r[1], b[3] - b[1]):
                row.append(b)
                break
        else:
            rows.append([b])
    return [b for row in rows for b in sorted(row, key=lambda b: b[0])]
