"""One PDF end to end: read, find captions and figures, pair them, write the images and the
PDF's own partial manifest. This is the unit of work of parallel jobs and of resuming.

Resuming: each PDF gets a folder ``OUTDIR/<name>-<sha1 of its bytes, 8 hex>/``. When its work is
complete the folder receives ``figures.csv`` (its rows) and then ``done.json`` (the options used),
both written atomically. A folder with ``done.json`` is reused as it is by a later run with the
same options; a folder without it (an interrupted run) is redone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from covtool import __version__
from covtool.core.atomic import atomic_write_bytes, atomic_write_text, temporary_of
from covtool.core.errors import CovtoolError, ParameterError, describe
from covtool.core.imageio import write_image
from covtool.core.manifest import read_manifest, write_records
from covtool.core.naming import safe_id
from covtool.pdf import document
from covtool.pdf.captions import Caption, deduplicate, find_captions, may_hold_caption
from covtool.pdf.figures import FigureOptions, body_blocks, find_regions, furniture
from covtool.pdf.layout import Box, area, format_box, page_turn, turn_box, turned, union, unturn_box
from covtool.pdf.pairing import DEFAULT_MAX_DISTANCE, Figure, pair_page
from covtool.pdf.panels import Label, PanelOptions, image_tiles, letter_labels, split_panels

DEFAULT_DPI = 150           # pdffigures2's rendering resolution
ROW_COLUMNS = ["id", "path", "source", "page", "figure", "panel", "bbox", "caption", "width", "height",
               "format", "kind", "doi", "title"]
DONE = "done.json"
PARTIAL = "figures.csv"
# a PDF up to this size is read once, hashed and opened from memory (MuPDF reads a file object
# by object, a seek and a read each); a larger one is hashed in chunks and opened from disk
IN_MEMORY_LIMIT = 256 << 20
#: which figures without a caption are listed: all, rasters only, none
UNCAPTIONED = ("raster", "all", "none")


@dataclass(frozen=True)
class ExtractOptions:
    """Every setting that changes what is extracted (stored in ``done.json``).

    Raises :class:`~covtool.core.errors.ParameterError` (``uncaptioned``, ``flate``) for a value
    outside :data:`UNCAPTIONED` or :data:`~covtool.pdf.document.FLATE_MODES`.
    """

    dpi: int = DEFAULT_DPI
    split_panels: bool = False
    uncaptioned: str = "raster"     # which figures without a caption are listed: all, raster, none
    flate: str = "keep"             # Flate images: their stored stream kept (PNG/TIFF), or "png"
    max_distance: float = DEFAULT_MAX_DISTANCE
    figures: FigureOptions = field(default_factory=FigureOptions)
    panels: PanelOptions = field(default_factory=PanelOptions)

    def __post_init__(self) -> None:
        if self.uncaptioned not in UNCAPTIONED:
            raise ParameterError("uncaptioned", f"must be raster, all or none, got {self.uncaptioned!r}")
        if self.flate not in document.FLATE_MODES:
            raise ParameterError("flate", f"must be keep or png, got {self.flate!r}")

    def fingerprint(self) -> dict:
        return json.loads(json.dumps(asdict(self)))


@dataclass
class PdfResult:
    """What one PDF gave: its rows (paths absolute), page count, the error if it failed and a
    warning (a PDF MuPDF repaired, every page whole) if it did not."""

    source: str
    rows: list[dict]
    pages: int = 0
    error: str | None = None
    reused: bool = False
    warning: str | None = None     #: what the user should know of a PDF that did not fail


def pdf_key(path: str | os.PathLike, data: bytes | None = None) -> str:
    """The folder name of a PDF's outputs: its name and the start of its content's SHA-1
    (of ``data``, the file's bytes, when the caller has read them)."""
    h = hashlib.sha1()
    if data is not None:
        h.update(data)
    else:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return f"{safe_id(Path(path).stem)[:60]}-{h.hexdigest()[:8]}"


def read_small(path: str | os.PathLike, limit: int | None = None) -> bytes | None:
    """The file's bytes when it is at most ``limit`` (:data:`IN_MEMORY_LIMIT`) bytes long, else
    None (it is then hashed and opened from disk). Raises OSError as ``open`` does."""
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size > (IN_MEMORY_LIMIT if limit is None else limit):
            return None
        return fh.read()


def analyze(doc, options: ExtractOptions, recordings: dict | None = None) -> tuple[list[Figure], list]:
    """Figures of a whole document, tables removed, with their captions.

    ``recordings``, when given, receives the :func:`document.display_list` of each page that
    may hold a figure (images, a caption, or any page with ``uncaptioned="all"``), by page
    number, to render from without running the pages again; the others are let go as soon as
    they are read.

    Returns
    -------
    (figures, pages)
        ``figures`` in page order (``page`` 0-based); ``pages`` the :class:`PageLayout` list.
    """
    digests: dict[int, str] = {}
    turns: dict[int, tuple[int, float, float]] = {}    # page -> (turn, width, height) as stored
    recordings = {} if recordings is None else recordings
    pages = []
    found: list[Caption] = []
    # a page's lines (boxes, fonts: the costly part of its text) are read when a caption may start
    # on it or it has images; of the others only the plain text is looked at (not the first
    # page's: its title), unless vector drawings without a caption are listed too
    lines_if = None if options.uncaptioned == "all" else may_hold_caption
    for p in doc:
        recording = document.display_list(p)
        page = document.read_page(p, with_drawings=False, digests=digests, recording=recording,
                                  lines_if=None if p.number == 0 else lines_if)
        turn = page_turn(page.lines)
        if turn:    # text set sideways (a landscape page): work in the frame it reads in
            turns[page.number] = (turn, page.width, page.height)
            page = turned(page, turn)
        page_captions = find_captions(page)
        if page.images or page_captions or options.uncaptioned == "all":
            recordings[p.number] = recording
        pages.append(page)
        found.extend(page_captions)
    captions: list[Caption] = deduplicate(found)
    # vector figures are only kept with a caption (unless uncaptioned="all"), so drawings (the
    # slowest read) are only needed on pages that have one
    with_captions = {c.page for c in captions}
    for page in pages:
        if page.number in with_captions or options.uncaptioned == "all":
            page.drawings = document.read_drawings(doc[page.number],
                                                    recording=recordings.get(page.number))
            if page.number in turns:
                page.drawings = [turn_box(d, *turns[page.number]) for d in page.drawings]
    digests, drawings = furniture(pages, options.figures.repeat)
    # images that are not page furniture may be figures without a caption: their page's lines
    # keep them apart from the body text
    for page in pages:
        if not page.lines_read and options.uncaptioned != "none" \
                and any(i.digest not in digests for i in page.images):
            page.lines = document.read_lines(recordings[page.number])
            page.lines_read = True
            turn = page_turn(page.lines)
            if turn:
                turns[page.number] = (turn, page.width, page.height)
                page = pages[page.number] = turned(page, turn)
    figures: list[Figure] = []
    for page in pages:
        caps = [c for c in captions if c.page == page.number]
        body = body_blocks(page.lines, caps)
        regions = find_regions(page, caps, options.figures, digests, drawings, body)
        paired = pair_page(regions, caps, page.height, page.number, body, options.max_distance)
        if page.number in turns:
            paired = [_unturned(f, *turns[page.number]) for f in paired]
        figures.extend(f for f in paired if f.is_figure and _keep_uncaptioned(f, options.uncaptioned))
    return figures, pages


def _unturned(fig: Figure, turn: int, w: float, h: float) -> Figure:
    """A figure found in a turned page's frame (:func:`covtool.pdf.layout.turned`) back in the
    page's own coordinates, where it is rendered and its box reported."""
    r = fig.region
    region = replace(r, bbox=unturn_box(r.bbox, turn, w, h),
                     images=[replace(i, bbox=unturn_box(i.bbox, turn, w, h)) for i in r.images],
                     drawings=[unturn_box(d, turn, w, h) for d in r.drawings])
    caption = (replace(fig.caption, bbox=unturn_box(fig.caption.bbox, turn, w, h))
               if fig.caption is not None else None)
    return replace(fig, region=region, caption=caption)


UNCAPTIONED_MIN_SIZE = 72.0    # pt: the shorter side of an uncaptioned figure kept by "raster"


def _keep_uncaptioned(fig: Figure, policy: str) -> bool:
    """Captioned figures are always kept. Vector drawings without a caption are mostly page
    decoration (boxed abstracts, ruled tables, vector logos), so by default only rasters are."""
    if fig.caption is not None or policy == "all":
        return True
    # an uncaptioned raster under an inch on its shorter side is a badge, logo or icon
    b = fig.region.bbox
    return (policy == "raster" and fig.region.kind != "vector"
            and min(b[2] - b[0], b[3] - b[1]) >= UNCAPTIONED_MIN_SIZE)


def _native_single(fig: Figure) -> bool:
    imgs = fig.region.images
    return len(imgs) == 1 and area(imgs[0].bbox) >= 0.9 * area(fig.region.bbox) and imgs[0].xref > 0


def _image_panels(fig: Figure) -> list:
    """The embedded images of a figure when they are its panels: two or more tiles of about one
    size and shape, apart from one another, that make up most of the figure. Not the boxes of a
    flow chart joined by vector arrows, nor one picture stored as strips that touch."""
    imgs = [i for i in fig.region.images if i.xref > 0]
    if len(imgs) < 2:
        return []
    covered = area(union(i.bbox for i in imgs))
    if sum(area(i.bbox) for i in imgs) > 1.1 * covered:   # stacked/overlaid images, not a grid
        return []
    if not image_tiles([i.bbox for i in imgs], fig.region.bbox):
        return []
    rows: list[list] = []
    for img in sorted(imgs, key=lambda i: i.bbox[1]):
        for row in rows:
            r = row[0].bbox
            if min(r[3], img.bbox[3]) - max(r[1], img.bbox[1]) > 0.5 * min(r[3] - r[1], img.bbox[3] - img.bbox[1]):
                row.append(img)
                break
        else:
            rows.append([img])
    return [i for row in rows for i in sorted(row, key=lambda i: i.bbox[0])]


def write_file(path: Path, payload: bytes | np.ndarray) -> None:
    """One output file, atomically, replacing what is there: bytes as they are, pixels as the
    image ``path`` names (a PNG's rows filtered by "up", the row above: on renderings and CT
    figures it measured both the fastest and the smallest of libpng's filters; OpenCV's default
    is "sub")."""
    import cv2

    try:
        if isinstance(payload, np.ndarray):
            write_image(path, payload, force=True, params=[cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP])
        else:
            atomic_write_bytes(path, payload, force=True)
    except OSError as exc:
        raise CovtoolError(f"cannot write {path} ({describe(exc)})") from None


def _write_native(doc, img, stem: Path, want_pixels: bool, flate: str = "keep"
                  ) -> tuple[Path, str, np.ndarray | None, tuple[int, int]] | None:
    """Write one embedded image losslessly; pixels come back only when ``want_pixels``."""
    data, ext, pixels = document.native_image(doc, img.xref, flate)
    if data is not None:
        path = stem.with_suffix("." + ext)
        write_file(path, data)
        pix = document.decode_bytes(data) if want_pixels else None
        return path, ext, pix, (img.width, img.height)
    if pixels is not None:
        path = stem.with_suffix(".png")
        write_file(path, pixels)
        return path, "png", pixels, (pixels.shape[1], pixels.shape[0])
    return None


def export_figures(doc, figures: list[Figure], folder: Path, key: str, options: ExtractOptions,
                   meta: dict, recordings: dict | None = None) -> list[dict]:
    """Write each figure (or its panels) under ``folder`` (replacing what is there) and return
    the manifest rows.

    ``recordings``: the pages' display lists from :func:`analyze`, to render from."""
    rows: list[dict] = []
    seen: set[str] = set()
    unnamed = 0
    for fig in figures:
        page = doc[fig.page]
        name = fig.caption.name if fig.caption else ""
        if not name:
            unnamed += 1
        label = f"fig{name}" if name else f"u{unnamed}"
        fid = safe_id(key, f"p{fig.page + 1}", label)
        while fid in seen:
            fid += "x"
        seen.add(fid)
        base = {"source": meta["source"], "page": fig.page + 1, "figure": name,
                "caption": fig.caption.text if fig.caption else "", "kind": fig.region.kind,
                "doi": meta["doi"], "title": meta["title"]}
        stem = folder / fid
        written = (_write_native(doc, fig.region.images[0], stem, options.split_panels,
                                  options.flate)
                   if _native_single(fig) else None)
        if written is None:
            pixels = document.render_region(page, fig.region.bbox, options.dpi,
                                            (recordings or {}).get(fig.page))
            path = stem.with_suffix(".png")
            write_file(path, pixels)
            written = (path, "png", pixels, (pixels.shape[1], pixels.shape[0]))
        path, fmt, pixels, (w, h) = written
        fig_row = {**base, "id": fid, "path": str(path), "panel": "", "bbox": format_box(fig.region.bbox),
                   "width": w, "height": h, "format": fmt}
        if not options.split_panels:
            rows.append(fig_row)
            continue
        panel_rows = _panels(doc, fig, pixels, stem, fid, base, options)
        rows.extend(panel_rows if panel_rows else [fig_row])
    return rows


def _panels(doc, fig: Figure, pixels: np.ndarray | None, stem: Path, fid: str, base: dict,
            options: ExtractOptions) -> list[dict]:
    rows = []
    imgs = _image_panels(fig)
    if imgs:
        for k, img in enumerate(imgs, 1):
            pstem = stem.parent / f"{fid}_panel{k}"
            got = _write_native(doc, img, pstem, False, options.flate)
            if got is None:
                continue
            path, fmt, _pix, (w, h) = got
            rows.append({**base, "id": pstem.name, "path": str(path), "panel": k,
                         "bbox": format_box(img.bbox), "width": w, "height": h, "format": fmt})
        return rows if len(rows) >= 2 else []
    if pixels is None:
        return []
    b = fig.region.bbox
    if _native_single(fig):
        b = fig.region.images[0].bbox
    sx, sy = (b[2] - b[0]) / pixels.shape[1], (b[3] - b[1]) / pixels.shape[0]
    # panel letters set as text (vector and mixed figures) are read from the text layer
    spans = document.text_spans(doc[fig.page], b)
    letters = [Label(lb.char, lb.score, ((lb.box[0] - b[0]) / sx, (lb.box[1] - b[1]) / sy,
                                         (lb.box[2] - b[0]) / sx, (lb.box[3] - b[1]) / sy))
               for lb in letter_labels(spans)]
    boxes = split_panels(pixels, options.panels, letters or None)
    if len(boxes) < 2:
        return []
    for k, (x0, y0, x1, y1) in enumerate(boxes, 1):
        pstem = stem.parent / f"{fid}_panel{k}"
        crop = np.ascontiguousarray(pixels[y0:y1, x0:x1])
        path = pstem.with_suffix(".png")
        write_file(path, crop)
        page_box: Box = (b[0] + x0 * sx, b[1] + y0 * sy, b[0] + x1 * sx, b[1] + y1 * sy)
        rows.append({**base, "id": pstem.name, "path": str(path), "panel": k, "bbox": format_box(page_box),
                     "width": x1 - x0, "height": y1 - y0, "format": "png"})
    return rows


def extract_pdf(path: str, outdir: str, options: ExtractOptions, force: bool = False) -> PdfResult:
    """Extract one PDF into ``outdir/<key>/``, or reuse that folder when it is complete.

    Never raises for a bad PDF: the reason comes back in ``PdfResult.error`` (the caller decides
    whether to stop). Safe to run in a worker process.
    """
    try:
        data = read_small(path)
        key = pdf_key(path, data)
    except OSError as exc:
        return PdfResult(path, [], error=describe(exc))
    folder = Path(outdir) / key
    done = folder / DONE
    fingerprint = options.fingerprint()
    if done.exists() and not force:
        try:
            stored = json.loads(done.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = {}
        if stored.get("options") == fingerprint and (folder / PARTIAL).exists():
            remove_stale_temporaries(folder)
            df = read_manifest(folder / PARTIAL, unique_ids=False)
            rows = df.to_dict("records")
            for r in rows:
                r["source"] = path
            return PdfResult(path, rows, int(stored.get("pages", 0)), reused=True,
                             warning=stored.get("warning"))
        if stored.get("options") not in (None, fingerprint):
            return PdfResult(path, [], error=f"{folder} holds an extraction with other options "
                                             "(force a new one, or write to another folder)")
    try:
        doc = document.open_pdf(path, data)
    except CovtoolError as exc:
        return PdfResult(path, [], error=exc.message)
    warning = None
    if doc.covtool_repaired:
        warning = (f"damaged PDF repaired ({doc.covtool_repaired}); every page is whole, but check "
                   "the file (an interrupted download?)")
    try:
        n_pages = doc.page_count
        recordings: dict = {}
        figures, pages = analyze(doc, options, recordings)
        title, doi = document.doc_title_doi(doc, pages)
        keep = {f.page for f in figures}
        recordings = {k: v for k, v in recordings.items() if k in keep}
        folder.mkdir(parents=True, exist_ok=True)
        done.unlink(missing_ok=True)
        remove_stale_temporaries(folder)
        # files of an unfinished earlier attempt in this folder are ours to replace
        rows = export_figures(doc, figures, folder, key, options,
                              {"source": path, "doi": doi, "title": title}, recordings=recordings)
    except CovtoolError as exc:
        return PdfResult(path, [], error=exc.message)
    except Exception as exc:  # MuPDF errors on damaged content streams
        return PdfResult(path, [], error=f"damaged PDF ({describe(exc)})")
    finally:
        doc.close()
    write_records(rows, ROW_COLUMNS, folder / PARTIAL, force=True)
    stored = {"options": fingerprint, "pages": n_pages, "covtool": __version__}
    if warning:
        stored["warning"] = warning
    atomic_write_text(done, json.dumps(stored, indent=1), force=True)
    return PdfResult(path, rows, n_pages, warning=warning)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files a killed run (SIGKILL, SIGTERM, a crash: no clean-up ran) left
    in a PDF's folder; they are named like images (``.x_panel2.tif.k17tmd4l.tmp.tif``) and a glob
    for images would take them. Only names of the atomic writer's form go, in this folder only
    (one PDF's, which only its item writes). Returns those removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if temporary_of(entry.name) is not None and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except FileNotFoundError:
                pass
    return removed


def caption_pattern(pattern: str | None) -> re.Pattern | None:
    """``pattern`` compiled (None for no pattern), or a :class:`ParameterError`
    (``caption_match``) when it is no regular expression: check it before any work."""
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ParameterError("caption_match", f"{pattern!r} is not a valid regex: {exc}") from None


def caption_filter(rows: list[dict], pattern: str | None) -> list[dict]:
    """Rows whose caption matches ``pattern`` (``re.search``, case-sensitive; use ``(?i)`` for
    case-insensitive). Failed-PDF rows (with an error) are kept. A pattern that is no regular
    expression is a :class:`ParameterError` (:func:`caption_pattern`)."""
    rx = caption_pattern(pattern)
    if rx is None:
        return rows
    return [r for r in rows if r.get("error") or rx.search(str(r.get("caption", "") or ""))]
