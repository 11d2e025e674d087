"""Splitting a compound figure into the panels a reader counts.

A reader counts the lettered panels of a figure ("a", "b", ... or "(A)", "(B)", ...) or, in a
figure without letters, the tiles of a montage of pictures (CT slices, photographs). A chart, a
diagram, a flow chart or a picture of a table is one panel however much white space it holds.
So the white space alone never splits a figure:

1. Panel letters come from the PDF's text layer (:func:`letter_labels`, by the caller) or else
   from the pixels (:func:`find_labels`): isolated glyphs, read by matching them against the
   Base-14 fonts, that spell a, b, c, ... in one case.
2. Gutters are found by recursive XY-cut on projection profiles: a row (column) is a gutter when
   it holds no foreground against a white background or none against a black one (CT panels
   often sit on black).
3. With two or more letters, the cuts that separate letters are kept, the widest gutter first:
   a piece without a letter joins the piece before it (letters lead their panels) or, where the
   letters stand under their panels, the one after; a piece holding letters that no gutter
   separates is divided at its letters (rows of letters, each starting its panel).
4. Without letters a figure is split only into a montage: two or more pieces of about the same
   size and shape, each mostly non-white and textured like a picture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

PixelBox = tuple[int, int, int, int]   # x0, y0, x1, y1 (half-open), pixels

PANEL_LETTERS = "abcdefgh"
CASELESS = "cosuvwxz"          # letters whose capital is the small letter scaled up
_GLYPH = 20                    # side of the normalised glyph images
_FONTS = ("helv", "hebo", "tiro", "tibo")    # Helvetica and Times, regular and bold
_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass(frozen=True)
class PanelOptions:
    """Thresholds of the panel splitter.

    ``tolerance``: grey levels from pure white (255) or black (0) still counted as background;
    ``min_gap``: shortest gutter, a share of the figure's side (at least 2 px);
    ``min_panel``: smallest montage tile side, a share of the figure's side;
    ``fill``: share of a line that may be foreground and still count as gutter;
    ``speck``: marks smaller than this share of the shorter side are noise (JPEG ringing);
    ``label_size``: tallest panel letter, a share of the shorter side;
    ``min_score``: lowest match of a glyph with its letter's templates (correlation, 0-1);
    ``tile_spread``: how far a montage tile's width and height may stray from the median tile's.
    """

    tolerance: int = 24
    min_gap: float = 0.006
    min_panel: float = 0.15
    fill: float = 0.002
    speck: float = 0.004
    label_size: float = 0.15
    min_score: float = 0.7
    tile_spread: float = 0.2


class Label(NamedTuple):
    """A panel letter as found: the letter as read, its match score, its box (pixels or points)."""

    char: str
    score: float
    box: tuple


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


# --- reading single glyphs ------------------------------------------------------------------

def _normalise_glyph(ink: np.ndarray) -> tuple[np.ndarray | None, float]:
    """A glyph's ink (H, W), 0-1, as a zero-mean unit vector of _GLYPH x _GLYPH (aspect kept,
    centred, slightly blurred) and its aspect ratio w/h."""
    import cv2

    ys, xs = np.nonzero(ink > 0.5)
    if ys.size == 0:
        return None, 0.0
    g = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32)
    h, w = g.shape
    s = (_GLYPH - 2) / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    out = np.zeros((_GLYPH, _GLYPH), np.float32)
    y0, x0 = (_GLYPH - nh) // 2, (_GLYPH - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw] = cv2.resize(g, (nw, nh), interpolation=cv2.INTER_AREA)
    out = cv2.GaussianBlur(out, (3, 3), 0.8).ravel()
    out -= out.mean()
    norm = float(np.linalg.norm(out))
    return (out / norm if norm else out), w / h


@lru_cache(maxsize=1)
def _templates() -> tuple[list[str], np.ndarray, np.ndarray]:
    """Letters and digits of the Base-14 Helvetica and Times (regular, bold) as glyph vectors,
    drawn large and at about 9 px (a small glyph's blur is part of its look): (chars, vectors
    (n, _GLYPH**2), aspects (n,))."""
    from covtool.pdf.document import glyph_sheet

    chars, vecs, aspects = [], [], []
    for size in (40.0, 11.0):
        cell = int(size * 1.6)
        sheet = glyph_sheet(_CHARS, _FONTS, size, cell)
        for r in range(len(_FONTS)):
            for c, ch in enumerate(_CHARS):
                ink = (255 - sheet[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell]) / 255.0
                lo, hi = float(ink.min()), float(ink.max())
                v, aspect = _normalise_glyph((ink - lo) / max(hi - lo, 1e-3))
                if v is not None:
                    chars.append(ch)
                    vecs.append(v)
                    aspects.append(aspect)
    return chars, np.array(vecs), np.array(aspects)


def read_glyph(ink: np.ndarray, slack: float = 0.06) -> tuple[str | None, float]:
    """The character a glyph image most resembles, and the match (correlation, up to 1).

    ``ink`` : ndarray (H, W), 0-1, one glyph. A panel letter within ``slack`` of the best match
    is preferred (a small bold "B" reads much like an "8").
    """
    v, aspect = _normalise_glyph(ink)
    if v is None:
        return None, 0.0
    chars, vecs, aspects = _templates()
    ok = (aspect / aspects > 0.7) & (aspect / aspects < 1.43)
    if not ok.any():
        return None, 0.0
    scores = np.where(ok, vecs @ v, -1.0)
    best = float(scores.max())
    panel = [k for k in np.flatnonzero(scores >= best - slack) if chars[k].lower() in PANEL_LETTERS]
    k = max(panel, key=lambda k: scores[k]) if panel else int(scores.argmax())
    return chars[k], float(scores[k])


# --- panel letters --------------------------------------------------------------------------

def find_labels(gray: np.ndarray, options: PanelOptions = PanelOptions()) -> list[Label]:
    """Panel letters drawn in the pixels, in letter order (empty when they do not spell a, b...).

    A candidate is one glyph (with thin brackets beside it, as in "(A)") of label size with
    nothing around it: clear by half its height above, below and left, by a tenth of it to the
    right (a title may follow: "a Convolutional network"). It is read by :func:`read_glyph`.
    """
    import cv2

    h_img, w_img = gray.shape
    short = min(h_img, w_img)
    hmin, hmax = max(6, 0.012 * short), options.label_size * short
    speck = max(2, int(options.speck * short))
    found: list[Label] = []
    for dark_on_light, fg in ((True, gray < 255 - options.tolerance), (False, gray > options.tolerance)):
        share = fg.mean()
        if share > 0.97 or share < 0.0005:
            continue
        n, lab, st, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
        big = (st[:, 2] > speck) | (st[:, 3] > speck)
        big[0] = False
        integral = cv2.integral(big[lab].astype(np.uint8))

        def ink_in(x0, y0, x1, y1, integral=integral):
            x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w_img, x1), min(h_img, y1)
            if x1 <= x0 or y1 <= y0:
                return 0
            return int(integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0])

        hs, ws = st[:, 3], st[:, 2]
        cand = np.flatnonzero((hs >= hmin) & (hs <= hmax) & (ws <= 1.4 * hs) & (ws >= 0.25 * hs))
        for i in cand[cand > 0]:
            x, y, w, h, a = (int(v) for v in st[i])
            if a > 0.88 * w * h:         # a filled square or dot (a legend key), not a letter
                continue
            box, own, bracketed = [x, y, x + w, y + h], a, False
            win = lab[max(0, y - h):y + 2 * h, max(0, x - h):x + w + h]
            for j in np.unique(win):
                if j in (0, i):
                    continue
                xj, yj, wj, hj, aj = (int(v) for v in st[j])
                bracket = (wj <= 0.55 * hj and 0.9 * h <= hj <= 1.6 * h
                           and abs(yj + hj / 2 - (y + h / 2)) < 0.3 * h
                           and max(xj - (x + w), x - (xj + wj)) <= 0.35 * h)
                if bracket:
                    box = [min(box[0], xj), min(box[1], yj), max(box[2], xj + wj), max(box[3], yj + hj)]
                    own += aj
                    bracketed = True
            m, right = max(2, round(0.5 * h)), max(2, round(0.1 * h))
            if ink_in(box[0] - m, box[1] - m, box[2] + right, box[3] + m) != own:
                continue
            crop = gray[y:y + h, x:x + w].astype(np.float32) / 255.0
            mask = lab[y:y + h, x:x + w] == i
            ink = 1.0 - crop if dark_on_light else crop
            lo, hi = float(ink[mask].min()), float(ink[mask].max())
            ink = np.clip((ink - lo) / max(hi - lo, 1e-3), 0, 1) * mask
            char, score = read_glyph(ink)
            if char is None or char.lower() not in PANEL_LETTERS or score < options.min_score:
                continue
            # text right after it: a label has brackets or is set larger ("a Convolutional
            # network"); a word of the line ("A dataset") is not a label
            reach = lab[box[1]:box[3], box[2]:box[2] + round(1.2 * h)]
            after = [j for j in np.unique(reach) if j and big[j]]
            if after and not bracketed:
                # the em of the letter (a small a, c, e is an x-height tall; a "C" may be a
                # small "c") against that of the text, whose tallest glyphs are cap-high
                em = h / (0.53 if char in "aceC" else 0.72)
                if em < 1.15 * max(st[j, 3] for j in after) / 0.72:
                    continue
            found.append(Label(char, score, tuple(box)))
    return letter_sequence(found)


def letter_sequence(labels: list[Label]) -> list[Label]:
    """The longest run a, b, c, ... (two at least, one case, heights within 1.5x of the "a") that
    the candidates spell, in letter order; empty when there is none."""
    best: list[Label] = []
    for first in (lb for lb in labels if lb.char.lower() == "a"):
        upper = first.char.isupper()
        height = first.box[3] - first.box[1]
        run = [first]
        for letter in PANEL_LETTERS[1:]:
            fits = [lb for lb in labels if lb.char.lower() == letter
                    and (lb.char.isupper() == upper or letter in CASELESS)
                    and 0.67 <= (lb.box[3] - lb.box[1]) / height <= 1.5
                    and not any(_overlap(lb.box, r.box) for r in run)]
            if not fits:
                break
            run.append(max(fits, key=lambda lb: lb.score))
        if len(run) > len(best) or (len(run) == len(best) and sum(r.score for r in run) > sum(r.score for r in best)):
            best = run
    return best if len(best) >= 2 else []


_LETTER_TEXT = re.compile(r"\(?([A-Ha-h])[).]?")


def letter_labels(spans: list[tuple[str, tuple, float, bool]]) -> list[Label]:
    """Panel letters of a figure's text layer, in letter order (empty when none spell a, b...).

    ``spans`` : (text, box, font size, bold) of the text inside the figure. A letter counts when
    its span is that letter alone (brackets and a full stop allowed) set bold or at least 1.2x
    the median size of the figure's text, as panel letters are.
    """
    if not spans:
        return []
    median = float(np.median([s[2] for s in spans]))
    found = []
    for text, box, size, bold in spans:
        m = _LETTER_TEXT.fullmatch(text.strip())
        if m and (bold or size >= 1.2 * median):
            found.append(Label(m.group(1), 1.0, tuple(box)))
    return letter_sequence(found)


def _overlap(a: tuple, b: tuple) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


# --- gutters --------------------------------------------------------------------------------

def _clean(fg: np.ndarray, speck_px: int) -> np.ndarray:
    """Foreground without the components smaller than ``speck_px`` on both sides."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    small = (stats[:, cv2.CC_STAT_WIDTH] < speck_px) & (stats[:, cv2.CC_STAT_HEIGHT] < speck_px)
    small[0] = True  # background label
    return ~small[labels]


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
    content = np.flatnonzero(~flags)
    if content.size == 0:
        return []
    lo, hi = int(content[0]), int(content[-1]) + 1
    segs, start = [], lo
    for a, b in _runs(flags[lo:hi]):
        if b - a >= min_gap:
            segs.append((start, lo + a))
            start = lo + b
    segs.append((start, hi))
    return segs


class _Masks(NamedTuple):
    white: np.ndarray    # foreground against a white background
    black: np.ndarray    # foreground against a black background
    full: tuple[int, int]
    options: PanelOptions

    def segments(self, box: PixelBox, ax: int) -> list[tuple[int, int]]:
        """Content segments of ``box`` along ``ax`` (0: rows, cut by horizontal gutters; 1:
        columns), absolute pixel coordinates."""
        x0, y0, x1, y1 = box
        flags = None
        for m in (self.white, self.black):
            g = m[y0:y1, x0:x1].mean(axis=1 if ax == 0 else 0) <= self.options.fill
            flags = g if flags is None else flags | g
        side = self.full[1] if ax == 0 else self.full[0]
        origin = y0 if ax == 0 else x0
        gap = max(2, round(self.options.min_gap * side))
        return [(origin + s, origin + e) for s, e in _segments(flags, gap)]

    def extent(self, box: PixelBox) -> PixelBox | None:
        """``box`` trimmed to its content; None when it holds none."""
        rows = self.segments(box, 0)
        cols = self.segments(box, 1)
        if not rows or not cols:
            return None
        return (cols[0][0], rows[0][0], cols[-1][1], rows[-1][1])


def _sub(box: PixelBox, ax: int, s: int, e: int) -> PixelBox:
    return (box[0], s, box[2], e) if ax == 0 else (s, box[1], e, box[3])


# --- splitting ------------------------------------------------------------------------------

def split_panels(img: np.ndarray, options: PanelOptions = PanelOptions(),
                 labels: list[Label] | None = None) -> list[PixelBox]:
    """Panel boxes of a compound figure.

    Parameters
    ----------
    img : ndarray (H, W) or (H, W, C)
        The figure; any dtype (scaled to 8-bit grey internally).
    options : PanelOptions
    labels : list of Label, optional
        The figure's panel letters in letter order, boxes in pixels (from its text layer); when
        None they are looked for in the pixels.

    Returns
    -------
    list of (x0, y0, x1, y1)
        Half-open pixel boxes: one per letter in letter order, or a montage's tiles in reading
        order (rows top to bottom, then left to right). One box (the content's extent) when the
        figure is one panel; empty for a blank image.
    """
    gray = to_gray8(img)
    h, w = gray.shape
    speck = max(2, int(options.speck * min(h, w)))
    white = _clean(gray < 255 - options.tolerance, speck)
    black = _clean(gray > options.tolerance, speck)
    if labels is None:
        labels = find_labels(gray, options)
    boxes = [_clip(lb.box, w, h) for lb in labels]
    boxes = [b for b in boxes if b is not None]
    for x0, y0, x1, y1 in boxes:      # letters are not content: they must not bridge a gutter
        white[max(0, y0 - 1):y1 + 1, max(0, x0 - 1):x1 + 1] = False
        black[max(0, y0 - 1):y1 + 1, max(0, x0 - 1):x1 + 1] = False
    masks = _Masks(white, black, (w, h), options)
    whole = masks.extent((0, 0, w, h))
    if whole is None:
        return []
    if len(boxes) >= 2:
        out: list[tuple[int, PixelBox]] = []
        lead = boxes[0][1] + boxes[0][3] < whole[1] + whole[3]     # the "a" in the upper half
        _by_letters(masks, (0, 0, w, h), list(enumerate(boxes)), 0, 0, out, lead)
        panels = [(k, masks.extent(b)) for k, b in out]
        panels = [(k, b) for k, b in panels if b is not None]
        if len(panels) >= 2:
            return [b for _, b in sorted(panels)]
    tiles: list[PixelBox] = []
    _xy_cut(masks, whole, 0, 0, tiles)
    if len(tiles) >= 2 and _is_montage(gray, tiles, options):
        return _reading_order(tiles)
    return [whole]


def _clip(box: tuple, w: int, h: int) -> PixelBox | None:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _by_letters(masks: _Masks, box: PixelBox, letters: list[tuple[int, PixelBox]], axis: int,
                depth: int, out: list[tuple[int, PixelBox]], lead: bool) -> None:
    """Cut ``box`` along gutters until each piece holds one letter; ``out`` gets (index of its
    first letter, piece). ``lead``: the letters stand at the top left of their panels."""
    if len(letters) == 1:
        out.append((letters[0][0], box))
        return
    cuts = [(ax, masks.segments(box, ax)) for ax in (axis, 1 - axis)] if depth < 12 else []
    cuts = [(ax, segs) for ax, segs in cuts if len(segs) > 1]
    if not cuts:
        out.extend(_letter_grid(box, letters))
        return
    # the widest gutter first, as a reader sees the layout (columns of a column-major figure)
    ax, segs = max(cuts, key=lambda c: max(b[0] - a[1] for a, b in zip(c[1], c[1][1:])))
    owned = _assign(segs, letters, ax)
    holding = [k for k, own in enumerate(owned) if own]
    if len(holding) == 1:
        # one piece holds every letter: the others (a legend, a colour bar) are left out
        s, e = segs[holding[0]]
        _by_letters(masks, _sub(box, ax, s, e), letters, 1 - ax, depth + 1, out, lead)
        return
    previous: list = []      # the letters of the piece before, when it made one panel led by its letter
    for s, e, own in _join_unlettered(segs, owned, lead):
        sub = _sub(box, ax, s, e)
        if previous and _content_before_letters(own, s, ax):
            # the piece runs on from the panel before it (no gutter between a's plot and b's
            # axis): divide the two at their letters
            _, prev = out.pop()
            merged = (min(prev[0], sub[0]), min(prev[1], sub[1]), max(prev[2], sub[2]), max(prev[3], sub[3]))
            out.extend(_letter_grid(merged, previous + own))
            previous = []
            continue
        made = len(out)
        _by_letters(masks, sub, own, 1 - ax, depth + 1, out, lead)
        one = len(out) - made == 1 and len(own) == 1
        previous = own if lead and one and not _content_before_letters(own, s, ax) else []


def _content_before_letters(own: list[tuple[int, PixelBox]], start: int, ax: int) -> bool:
    """Whether a piece begins well before its first letter (by over twice the letter's size
    along the cut): where letters lead their panels (the piece before had its letter first),
    that content is the end of the panel before."""
    b = min((b for _, b in own), key=lambda b: b[1] if ax == 0 else b[0])
    first, size = (b[1], b[3] - b[1]) if ax == 0 else (b[0], b[2] - b[0])
    return first - start > 2 * size


def _assign(segs: list[tuple[int, int]], letters: list[tuple[int, PixelBox]], ax: int) -> list[list]:
    """The letters each segment holds: the one its centre falls in, else the nearest (a letter in
    a gutter goes with the panel after it on a tie, as letters lead their panels)."""
    owned: list[list] = [[] for _ in segs]
    for k, b in letters:
        c = (b[1] + b[3]) / 2 if ax == 0 else (b[0] + b[2]) / 2
        dist = [0.0 if s <= c < e else (s - c if c < s else c - e + 1) for s, e in segs]
        owned[min(range(len(segs)), key=lambda i: (dist[i], -i))].append((k, b))
    return owned


def _join_unlettered(segs: list[tuple[int, int]], owned: list[list], lead: bool) -> list[tuple[int, int, list]]:
    """Segments without a letter joined to the one before (letters that ``lead`` their panels,
    at the top left) or else to the one after (letters under their panels)."""
    parts = [[s, e, own] for (s, e), own in zip(segs, owned, strict=True)]
    while any(not p[2] for p in parts):
        i = next(k for k, p in enumerate(parts) if not p[2])
        j = i - 1 if (lead and i > 0) or i + 1 == len(parts) else i + 1
        a, b = sorted((i, j))
        parts[a:b + 1] = [[parts[a][0], parts[b][1], parts[a][2] + parts[b][2]]]
    return [tuple(p) for p in parts]


def _letter_grid(box: PixelBox, letters: list[tuple[int, PixelBox]]) -> list[tuple[int, PixelBox]]:
    """A piece no gutter divides, cut at its letters: letters on one line make a row, which runs
    down to the next row's letters; each letter's panel runs right to the next letter."""
    rows: list[list[tuple[int, PixelBox]]] = []
    for k, b in sorted(letters, key=lambda kb: kb[1][1]):
        row = rows[-1] if rows else None
        if row and b[1] < row[0][1][3]:
            row.append((k, b))
        else:
            rows.append([(k, b)])
    out = []
    for r, row in enumerate(rows):
        top = box[1] if r == 0 else min(b[1] for _, b in row)
        bottom = box[3] if r + 1 == len(rows) else min(b[1] for _, b in rows[r + 1])
        row.sort(key=lambda kb: kb[1][0])
        for c, (k, b) in enumerate(row):
            left = box[0] if c == 0 else b[0]
            right = box[2] if c + 1 == len(row) else row[c + 1][1][0]
            if right > left and bottom > top:
                out.append((k, (left, top, right, bottom)))
    return out


def _xy_cut(masks: _Masks, box: PixelBox, axis: int, depth: int, out: list[PixelBox]) -> None:
    """Montage tiles: cut along gutters, dropping pieces thinner than ``min_panel`` of the figure
    (titles, letters, legends); a box whose every piece is that thin stays whole."""
    for ax in (axis, 1 - axis):
        side = masks.full[1] if ax == 0 else masks.full[0]
        segs = [s for s in masks.segments(box, ax) if s[1] - s[0] >= masks.options.min_panel * side]
        if len(segs) > 1 and depth < 8:
            for s, e in segs:
                _xy_cut(masks, _sub(box, ax, s, e), 1 - ax, depth + 1, out)
            return
        if len(segs) == 1:
            box = _sub(box, ax, *segs[0])
    out.append(box)


def _is_montage(gray: np.ndarray, tiles: list[PixelBox], options: PanelOptions) -> bool:
    """Tiles of about one size and shape (not strips), each a picture: mostly non-white and
    textured (a chart, diagram or table is mostly white or flat)."""
    import cv2

    if not similar_tiles([(b[2] - b[0], b[3] - b[1]) for b in tiles], options.tile_spread):
        return False
    for x0, y0, x1, y1 in tiles:
        crop = gray[y0:y1, x0:x1].astype(np.float32)
        if np.mean(crop < 255 - options.tolerance) < 0.6:
            return False
        mean = cv2.blur(crop, (3, 3))
        sd = np.sqrt(np.maximum(cv2.blur(crop * crop, (3, 3)) - mean * mean, 0))
        if np.mean(sd > 4) < 0.15:
            return False
    return True


def similar_tiles(sizes: list[tuple[float, float]], spread: float = 0.2) -> bool:
    """Whether boxes of these (width, height) could tile a montage: each side within ``spread``
    of the median tile's, none a strip (longer side over 2.5x the shorter)."""
    ws = np.array([w for w, _ in sizes], float)
    hs = np.array([h for _, h in sizes], float)
    if ws.size == 0 or np.any(ws <= 0) or np.any(hs <= 0):
        return False
    if np.any(np.abs(ws - np.median(ws)) > spread * np.median(ws)) or \
            np.any(np.abs(hs - np.median(hs)) > spread * np.median(hs)):
        return False
    return not (np.any(ws / hs > 2.5) or np.any(hs / ws > 2.5))


def image_tiles(boxes: list[tuple], region: tuple, spread: float = 0.2) -> bool:
    """Whether embedded images (boxes in points) are the tiles of a montage: of about one size
    and shape (:func:`similar_tiles`), covering most (60 %) of the figure's ``region``, and
    apart: two that meet edge to edge are one picture stored in strips."""
    def area(b):
        return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])

    if sum(area(b) for b in boxes) < 0.6 * area(region):
        return False
    if not similar_tiles([(b[2] - b[0], b[3] - b[1]) for b in boxes], spread):
        return False
    return not any(_touching(a, b) for k, a in enumerate(boxes) for b in boxes[k + 1:])


def _touching(a: tuple, b: tuple, gap: float = 1.0) -> bool:
    """Two boxes that meet edge to edge (within ``gap``) along most of that edge."""
    xo = min(a[2], b[2]) - max(a[0], b[0])
    yo = min(a[3], b[3]) - max(a[1], b[1])
    return ((-gap <= yo <= gap and xo > 0.9 * min(a[2] - a[0], b[2] - b[0]))
            or (-gap <= xo <= gap and yo > 0.9 * min(a[3] - a[1], b[3] - b[1])))


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
