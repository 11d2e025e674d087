"""PyMuPDF at the edge: opening PDFs, reading pages into :class:`PageLayout`, getting images out.

Everything that touches ``pymupdf`` lives here so the algorithms stay testable on plain data:
what a content stream draws is read by :mod:`covtool.pdf.contentstream`, the title and DOI found
by :mod:`covtool.pdf.metadata`, and stored Flate streams wrapped into files by
:mod:`covtool.core.image_containers`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from covtool.core.atomic import sigint_deferred
from covtool.core.errors import CovtoolError
from covtool.core.image_containers import png_from_idat, tiff_from_deflate
from covtool.pdf.contentstream import drawn_xobjects, has_inline_image
from covtool.pdf.layout import Box, ImagePlacement, PageLayout, TextLine, line_turn
from covtool.pdf.metadata import title_doi

#: encodings stored in the PDF as files, kept byte for byte (JPEG: re-encoding would lose
#: quality). Flate images are kept as their stored stream too where a file format holds it as it
#: is (:func:`stored_flate`); the others (JPX, JBIG2, CCITT, masked or unusual Flate images) are
#: decoded losslessly and written as PNG.
NATIVE_FORMATS = {"jpeg": "jpg", "jpg": "jpg"}
#: what :func:`native_image`'s ``flate`` may be: keep the stored Deflate stream (PNG or TIFF), or
#: re-encode as PNG
FLATE_MODES = ("keep", "png")


class PdfError(CovtoolError):
    """A PDF that cannot be processed: not a PDF, damaged, encrypted or empty."""


def open_pdf(path: str | os.PathLike, data: bytes | None = None):
    """Open a PDF for reading, or raise :class:`PdfError` with the reason.

    ``data``, the file's bytes when the caller has read them, is opened from memory: MuPDF then
    reads objects from a buffer instead of with a seek and a read of the file for each.
    """
    import pymupdf

    path = Path(path)
    if data is None:
        if not path.exists():
            raise PdfError("no such file", path)
        if path.is_dir():
            raise PdfError("is a folder, expected a PDF", path)
        if path.stat().st_size == 0:
            raise PdfError("empty file", path)
        with open(path, "rb") as fh:
            head = fh.read(1024)
    elif not data:
        raise PdfError("empty file", path)
    else:
        head = data[:1024]
    if b"%PDF" not in head:
        raise PdfError("not a PDF (no %PDF header)", path)
    pymupdf.TOOLS.mupdf_warnings(reset=True)
    try:
        doc = pymupdf.open(path, filetype="pdf") if data is None else \
            pymupdf.open(stream=data, filetype="pdf")
    except Exception as exc:  # MuPDF raises its own types for broken files
        # MuPDF's error, the cause, says what is wrong; PyMuPDF's names only the source
        raise PdfError(f"damaged PDF ({_reason(exc.__cause__ or exc)})", path) from None
    if doc.needs_pass:
        doc.close()
        raise PdfError("encrypted PDF (needs a password)", path)
    doc.covtool_repaired = _repair_reason(pymupdf.TOOLS.mupdf_warnings()) if doc.is_repaired else None
    try:
        check_complete(doc)
    except PdfError as exc:
        doc.close()
        raise PdfError(exc.message, path) from None
    return doc


def _repair_reason(warnings: str) -> str:
    """MuPDF's first warning on opening a repaired document (``cannot find startxref``)."""
    for line in warnings.splitlines():
        line = re.sub(r"^(format error|warning|error): ", "", line.strip())
        if line:
            return line[:160]
    return "broken cross-reference table"


def check_complete(doc) -> None:
    """Refuse a document that lost pages: raise :class:`PdfError` (no file named) when it has no
    page, or when MuPDF had to repair it (``is_repaired``: a truncated download, a broken
    cross-reference table) and a page is gone (:func:`lost_pages`) -- its figures would be
    silently missing. A repaired document whose every page is whole passes (the caller warns,
    from ``doc.covtool_repaired``, the repair's reason)."""
    repaired = getattr(doc, "covtool_repaired", None) or (
        "broken cross-reference table" if doc.is_repaired else None)
    if doc.page_count == 0:
        raise PdfError(f"truncated or damaged PDF ({repaired}): no page left" if repaired
                       else "PDF has no pages")
    if not repaired:
        return
    lost = lost_pages(doc)
    if lost:
        pages = ", ".join(str(n + 1) for n in lost[:5]) + (", ..." if len(lost) > 5 else "")
        raise PdfError(f"truncated or damaged PDF ({repaired}): {len(lost)} of {doc.page_count} "
                       f"pages lost or incomplete (page{'s' if len(lost) > 1 else ''} {pages})")


_REF = re.compile(r"\b(\d+) \d+ R\b")


def lost_pages(doc) -> list[int]:
    """The pages (0-based) of ``doc`` that are gone or incomplete: the page object cannot be
    loaded, or its content streams or resources (fonts, images, forms, and what they refer to)
    refer to an object the file does not hold -- what a cut-off file does to the pages whose
    objects came after the cut. The page tree (``page_count``) still counts them where it was
    written before the cut; a file cut before its page tree has no page (:func:`check_complete`).
    """
    size = doc.xref_length()
    whole: set[int] = set()    # objects known held, with everything they refer to

    def complete(roots: list[int]) -> bool:
        seen, stack = set(), list(roots)
        while stack:
            xref = stack.pop()
            if xref in whole or xref in seen:
                continue
            seen.add(xref)
            try:
                text = doc.xref_object(xref, compressed=True) if 0 < xref < size else "null"
            except Exception:
                text = "null"
            if text.strip() == "null":        # what MuPDF gives for an object it does not hold
                return False
            stack.extend(int(m.group(1)) for m in _REF.finditer(text))
        whole.update(seen)
        return True

    lost = []
    for number in range(doc.page_count):
        try:
            xref = doc.load_page(number).xref
            refs = "".join(doc.xref_get_key(xref, key)[1] for key in ("Contents", "Resources"))
        except Exception:
            lost.append(number)
            continue
        if not complete([int(m.group(1)) for m in _REF.finditer(refs)]):
            lost.append(number)
    return lost


def _reason(exc: BaseException) -> str:
    text = re.sub(r"^code=\d+: ", "", str(exc).strip()).splitlines()
    return text[0][:160] if text else type(exc).__name__


def display_list(page):
    """The page run once through MuPDF's interpreter and recorded (``Page.get_displaylist``).

    Text, image placements and renderings are all made from this one recording: running the
    page's content stream (fonts, glyphs) is the costly part of each of them, and each
    ``Page.get_text``/``get_image_info``/``get_pixmap`` call would run it again. It is recorded
    unrotated, as PyMuPDF's text and image calls see a page (they set /Rotate to 0 while they
    run), so its coordinates are theirs.
    """
    rotation = page.rotation
    if rotation:
        page.set_rotation(0)
    try:
        return page.get_displaylist()
    finally:
        if rotation:
            page.set_rotation(rotation)


def read_page(page, with_drawings: bool = True, cluster_tolerance: float = 3.0,
              digests: dict[int, str] | None = None, recording=None,
              lines_if: Callable[[str], bool] | None = None) -> PageLayout:
    """A PyMuPDF page as a :class:`PageLayout` (text lines, drawn images, drawing clusters).

    ``recording`` is the page's :func:`display_list` when the caller keeps it (to render from
    it later); one is made otherwise. Text comes from a text page of it without images
    (:func:`read_lines`), placements from a second one with images (:func:`image_blocks`), made
    only when the page has image XObjects.

    ``lines_if``, when given, is asked first with the page's plain text (``extractText`` of the
    same text page, one line per text line, several times cheaper than the lines with their
    boxes and fonts); when it says no, the lines are not read and ``layout.lines_read`` is False.

    ``digests`` caches the image digests of the document by xref: the MD5 of the image's stored
    stream (hashing the stored bytes, not the decoded pixels, keeps this cheap). Placements are
    matched to the page's image XObjects by pixel size; only XObjects sharing a size on the page
    are told apart by the MD5 of their pixels (what ``get_image_rects`` does). Inline images (no
    XObject) are placements with ``xref`` 0; on a page without image XObjects they are looked
    for only where the lines are read (a caption may start there).
    """
    import pymupdf

    if recording is None:
        recording = display_list(page)
    textpage = pymupdf.TextPage(recording.get_textpage(flags=0))     # no images
    plain = "" if lines_if is None else textpage.extractText()
    read = lines_if is None or lines_if(plain)
    lines = _lines(textpage) if read else []
    digests = {} if digests is None else digests
    doc = page.parent
    by_size: dict[tuple[int, int], list[int]] = {}
    items = page.get_images(full=True)
    for item in items:
        xref = int(item[0])
        by_size.setdefault((int(item[2]), int(item[3])), []).append(xref)
        if xref not in digests:
            try:
                digests[xref] = hashlib.md5(doc.xref_stream_raw(xref) or b"").hexdigest()
            except Exception:
                digests[xref] = f"xref{xref}"
    images = []
    if by_size:
        images = _placements(doc, recording, by_size, digests, lambda: drawn_images(page, items))
    elif read and has_inline_image(page.read_contents()):
        # no XObject: only inline images; looked for where a caption may be (the lines are read)
        images = _placements(doc, recording, by_size, digests)
    r = page.rect          # as shown (/Rotate applied); the page's text and images are unrotated
    w, h = (r.height, r.width) if page.rotation % 180 else (r.width, r.height)
    layout = PageLayout(page.number, float(w), float(h), lines, images, [], lines_read=read,
                        plain="" if read else plain)
    if with_drawings:
        layout.drawings = read_drawings(page, cluster_tolerance, recording)
    return layout


def read_lines(recording) -> list[TextLine]:
    """The text lines of a page's :func:`display_list`: box, text, largest font size, boldness of
    the first span, block number (a text page without images, its ``"dict"``)."""
    import pymupdf

    return _lines(pymupdf.TextPage(recording.get_textpage(flags=0)))


def _lines(textpage) -> list[TextLine]:
    lines: list[TextLine] = []
    for bi, block in enumerate(textpage.extractDICT()["blocks"]):
        if block.get("type", 0) != 0:
            continue
        for line in block["lines"]:
            spans = [s for s in line["spans"] if s["text"].strip()]
            if not spans:
                continue
            text = "".join([s["text"] for s in line["spans"]])
            size = max([s["size"] for s in spans])
            first = spans[0]
            bold = bool(first["flags"] & 16) or "bold" in first["font"].lower()
            lines.append(TextLine(tuple(line["bbox"]), text, float(size), bold, bi,
                                  line_turn(line.get("dir", (1.0, 0.0)))))
    return lines


def drawn_images(page, items: list | None = None) -> list[int] | None:
    """The image XObjects the page's content stream draws, in drawing order, by xref; None when
    its content alone cannot tell (an image drawn from inside a form XObject, inline images).

    ``items`` are the page's ``get_images(full=True)`` when the caller has them.
    """
    names = {}
    for item in page.get_images(full=True) if items is None else items:
        if item[9] != 0:            # referenced from a form XObject, not from the page itself
            return None
        names[item[7].encode("latin-1")] = int(item[0])
    return drawn_xobjects(page.read_contents(), names)


def _placements(doc, recording, by_size: dict[tuple[int, int], list[int]],
                digests: dict[int, str], drawn: Callable[[], list[int] | None] | None = None
                ) -> list[ImagePlacement]:
    """Every placement of the page's image XObjects, from a text page that keeps images.

    A placement's pixel size names its XObject when only one of the page's has that size. Those
    sharing a size are told apart by drawing order when ``drawn`` (a callable giving
    :func:`drawn_images`) accounts for each of their placements, else by the MD5 of their pixels
    (decoding every image of the page: what ``get_image_rects`` does).
    """
    import pymupdf

    textpage = pymupdf.TextPage(recording.get_textpage(flags=pymupdf.TEXT_PRESERVE_IMAGES))
    images = []
    shared: dict[tuple[int, int], list[tuple]] = {}     # size -> placements, in drawing order
    for bbox, size in image_blocks(textpage):      # every placement; no pixel hashing (slow)
        xrefs = by_size.get(size, [])
        if len(xrefs) == 1:
            images.append(ImagePlacement(bbox, xrefs[0], size[0], size[1], digests[xrefs[0]]))
        elif xrefs:
            shared.setdefault(size, []).append(bbox)
        elif size[0] > 0 and size[1] > 0 and bbox[2] > bbox[0] and bbox[3] > bbox[1]:
            # no XObject of that size: an inline image (BI ... EI), which some writers use for
            # whole figures; no stored stream to keep, so it is rendered. Its digest is its size,
            # so that one repeated on --repeat pages is furniture
            images.append(ImagePlacement(bbox, 0, size[0], size[1], f"inline-{size[0]}x{size[1]}"))
    found: dict[int, list[tuple]] = {}
    unresolved: set[int] = set()
    order = drawn() if (shared and drawn is not None) else None
    for size, boxes in shared.items():
        seq = [x for x in order if x in by_size[size]] if order is not None else []
        if len(seq) == len(boxes):
            for xref, bbox in zip(seq, boxes):
                found.setdefault(xref, []).append(bbox)
        else:
            unresolved.update(by_size[size])
    hashed = None
    for xref in sorted(unresolved):             # placements whose pixels match the XObject's
        try:
            digest = pymupdf.Pixmap(doc, xref).digest
            if hashed is None:
                hashed = textpage.extractIMGINFO(hashes=1)
            found[xref] = [tuple(im["bbox"]) for im in hashed if im["digest"] == digest]
        except Exception:
            found[xref] = []
    for xref in sorted(found):
        w, h = next(k for k, v in by_size.items() if xref in v)
        for box in found[xref]:
            rect = pymupdf.Rect(box)
            if not (rect.is_empty or rect.is_infinite):
                images.append(ImagePlacement(tuple(float(v) for v in rect), xref, w, h, digests[xref]))
    return images


def image_blocks(textpage) -> list[tuple[Box, tuple[int, int]]]:
    """Each image block of a text page made with images, in drawing order: its box and its
    image's pixel size. The two fields of ``extractIMGINFO`` that placements need, without the
    ten others it reads for every image (mask, colour space, resolution, stored size...)."""
    from pymupdf import mupdf

    out = []
    for block in textpage.this:
        b = block.m_internal
        if b.type == mupdf.FZ_STEXT_BLOCK_IMAGE:
            image = block.i_image()
            r = b.bbox
            out.append(((float(r.x0), float(r.y0), float(r.x1), float(r.y1)), (int(image.w()), int(image.h()))))
    return out


def read_drawings(page, cluster_tolerance: float = 3.0, recording=None) -> list[Box]:
    """The page's vector drawings, clustered into boxes (:func:`cluster_boxes`, what
    ``Page.cluster_drawings`` computes).

    Each filled or stroked path's box is taken while the page's :func:`display_list`
    (``recording``, made when not given) is played into a device that keeps only those boxes
    (:func:`path_boxes`). ``get_cdrawings`` would run the page's content stream again, fonts and
    all, and convert every path item: 0.95 s against 0.08 s on the 13 real papers' 230 pages.
    """
    try:
        recording = display_list(page) if recording is None else recording
        rects = path_boxes(recording)
        if not rects:
            return []
        r = recording.rect             # the page unrotated, as it was recorded
        return cluster_boxes(np.array(rects, dtype=np.float64), (r.x0, r.y0, r.x1, r.y1),
                             cluster_tolerance, cluster_tolerance)
    except Exception:  # a broken content stream must not lose the page's raster figures
        return []


_PATH_DEVICE = None


def path_boxes(recording) -> list[Box]:
    """The box of every path a :func:`display_list` fills or strokes, in drawing order.

    A box is MuPDF's ``fz_bound_path`` of the path's points (curve control points included,
    line width not), in the page's unrotated coordinates. Clip paths, text, images and shadings
    are not paths drawn and are left out, as ``get_drawings`` leaves them out. One difference
    from ``get_drawings``' ``rect``: PyMuPDF's path walker leaves out the start point of every
    subpath after the first, so a path ``m A l B m C l D`` there spans A, B and D; here it spans
    C as well. Of the 230 real pages, 15 have a path where the two differ, by at most a few
    points, and the clusters of 7 pages differ by as much (tests/pdf/test_document.py).
    """
    global _PATH_DEVICE
    from pymupdf import mupdf

    if _PATH_DEVICE is None:
        class PathBoxes(mupdf.FzDevice2):
            # MuPDF calls these from C++: an exception raised in them would be printed by SWIG
            # and dropped, and the run go on; it is kept here and raised once the display list
            # has run (Ctrl-C is held back for the run: sigint_deferred)
            def __init__(self):
                super().__init__()
                self.use_virtual_fill_path()
                self.use_virtual_stroke_path()
                self.boxes: list[Box] = []
                self.error: BaseException | None = None

            def fill_path(self, ctx, path, even_odd, ctm, *color):
                self._add(path, ctm)

            def stroke_path(self, ctx, path, stroke, ctm, *color):
                self._add(path, ctm)

            def _add(self, path, ctm):
                if self.error is not None:
                    return
                try:
                    r = mupdf.ll_fz_bound_path(path, None, ctm)
                    self.boxes.append((r.x0, r.y0, r.x1, r.y1))
                except BaseException as exc:
                    self.error = exc

        _PATH_DEVICE = PathBoxes
    device = _PATH_DEVICE()
    with sigint_deferred():
        try:
            mupdf.fz_run_display_list(getattr(recording, "this", recording), device, mupdf.FzMatrix(),
                                      mupdf.FzRect(mupdf.FzRect.Fixed_INFINITE), mupdf.FzCookie())
        finally:
            mupdf.fz_close_device(device)
    if device.error is not None:
        raise device.error
    # an empty path has an empty box (x0 > x1), an unbounded one an infinite box
    return [b for b in device.boxes if b[0] <= b[2] and b[1] <= b[3] and max(map(abs, b)) < 1e9]


def cluster_boxes(rects: np.ndarray, area: Box, x_tolerance: float = 3.0,
                  y_tolerance: float = 3.0) -> list[Box]:
    """PyMuPDF's ``Page.cluster_drawings`` on an (N, 4) array of path rectangles, vectorised
    (PyMuPDF's Python loop builds a Rect for every comparison: 0.77 s on the 13 real papers'
    230 pages, 0.22 s here, against 0.69 s for reading the drawings themselves).

    The same rule and result, box for box: the rectangles inside ``area`` (the page), in order
    of (y1, x0); the first grows by every rectangle within the tolerances of it (in x and in y)
    until none is left near it, and is a cluster; the rest go on the same way (the box only
    grows, so its cluster is the same whatever order its neighbours are taken in). A grown box
    is held in single precision, as MuPDF's ``fz_rect`` holds it. Clusters are returned sorted by
    (y1, x0), duplicates dropped, only those wider than ``x_tolerance`` and taller than
    ``y_tolerance``.
    """
    if rects.size == 0:
        return []
    inside = ((rects[:, 0] >= area[0]) & (rects[:, 2] <= area[2])
              & (rects[:, 1] >= area[1]) & (rects[:, 3] <= area[3]))
    # stable, as Python's sort: a tie in (y1, x0) is two rectangles touching, one cluster either way
    rest = rects[inside][np.lexsort((rects[inside][:, 0], rects[inside][:, 3]))]
    x0, y0 = np.minimum(rest[:, 0], rest[:, 2]), np.minimum(rest[:, 1], rest[:, 3])
    x1, y1 = np.maximum(rest[:, 0], rest[:, 2]), np.maximum(rest[:, 1], rest[:, 3])
    alive = np.ones(len(rest), dtype=bool)
    clusters: list[tuple[float, float, float, float]] = []
    while alive.any():
        k = int(np.argmax(alive))         # the first left, in (y1, x0) order
        alive[k] = False
        box = tuple(float(v) for v in rest[k])
        while True:
            bx0, bx1 = min(box[0], box[2]), max(box[0], box[2])
            by0, by1 = min(box[1], box[3]), max(box[1], box[3])
            near = alive & ~((bx1 < x0 - x_tolerance) | (bx0 > x1 + x_tolerance)
                             | (by1 < y0 - y_tolerance) | (by0 > y1 + y_tolerance))
            if not near.any():
                break
            alive &= ~near
            grown = (min(box[0], float(rest[near, 0].min()), float(rest[near, 2].min())),
                     min(box[1], float(rest[near, 1].min()), float(rest[near, 3].min())),
                     max(box[2], float(rest[near, 0].max()), float(rest[near, 2].max())),
                     max(box[3], float(rest[near, 1].max()), float(rest[near, 3].max())))
            box = tuple(float(v) for v in np.array(grown, dtype=np.float32))
        clusters.append(box)
    out = sorted(set(clusters), key=lambda r: (r[3], r[0]))
    return [r for r in out if r[2] - r[0] > x_tolerance and r[3] - r[1] > y_tolerance]


def glyph_sheet(chars: str, fonts: Sequence[str], size: float, cell: int) -> np.ndarray:
    """A grey (H, W) uint8 sheet of ``chars`` (columns) in each of the Base-14 ``fonts`` (rows),
    one ``cell`` x ``cell`` pixel square each, set at ``size`` and drawn at 72 dpi."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=cell * len(chars), height=cell * len(fonts))
    shape = page.new_shape()
    for r, font in enumerate(fonts):
        for c, ch in enumerate(chars):
            shape.insert_text((c * cell + 0.3 * size, r * cell + 1.2 * size), ch, fontname=font,
                              fontsize=size)
    shape.commit()
    pix = page.get_pixmap(dpi=72, colorspace=pymupdf.csGRAY)
    sheet = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width).copy()
    doc.close()
    return sheet


def text_spans(page, box: Box) -> list[tuple[str, tuple, float, bool]]:
    """The text spans inside ``box`` of a page (its ``"dict"`` clipped to it): text, box, font
    size and boldness (the bold flag, or a bold/black/heavy font name), blank ones left out."""
    out = []
    for block in page.get_text("dict", clip=box)["blocks"]:
        for line in block.get("lines", ()):
            for sp in line["spans"]:
                if sp["text"].strip():
                    font = sp["font"].lower()
                    bold = bool(sp["flags"] & 16) or any(w in font for w in ("bold", "black", "heavy"))
                    out.append((sp["text"], tuple(sp["bbox"]), float(sp["size"]), bold))
    return out


def doc_title_doi(doc, pages: Sequence[PageLayout] = ()) -> tuple[str, str]:
    """The paper's title and DOI, from the PDF's metadata or else from its first pages (``pages``,
    the document's :class:`PageLayout` list: the text of the first two, as read); see
    :func:`covtool.pdf.metadata.title_doi`."""
    return title_doi(doc.metadata or {}, pages)


def pixmap_array(pix) -> np.ndarray:
    """A PyMuPDF Pixmap as (H, W) or (H, W, 3|4) uint8, RGB(A).

    A stencil mask (``/ImageMask true``, as older journals store line art and scans, often
    CCITT-compressed) decodes to an alpha channel without colour: where it is 255 the page is
    painted with the current fill colour. It becomes grey ink on white (255 - alpha), black as
    nearly all such images are drawn; written as it decodes it would be a negative."""
    import pymupdf

    if pix.colorspace is None and pix.alpha and pix.n == 1:
        alpha = np.frombuffer(pix.samples_mv, dtype=np.uint8).reshape(pix.height, pix.width)
        return 255 - alpha
    if pix.colorspace is not None and pix.colorspace.n not in (1, 3):
        pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
    arr = np.frombuffer(pix.samples_mv, dtype=np.uint8).reshape(pix.height, pix.width, pix.n)
    if arr.shape[2] == 1:
        arr = arr[..., 0]
    elif arr.shape[2] == 2:          # grey + alpha: drop the alpha (backgrounds stay grey)
        arr = arr[..., 0]
    return arr.copy()


def native_image(doc, xref: int, flate: str = "keep") -> tuple[bytes | None, str, np.ndarray | None]:
    """An embedded image, losslessly.

    ``flate="keep"`` keeps a Flate image's stored stream where :func:`stored_flate` can;
    ``"png"`` decodes it and leaves the PNG to the caller.

    Returns
    -------
    (data, ext, pixels)
        ``data``/``ext`` are the file's bytes and suffix when the encoding is kept as is (JPEG
        without transparency, grey or RGB; see :func:`stored_flate` for Flate); otherwise
        ``data`` is None and ``pixels`` holds the decoded image (SMask applied, CMYK and other
        colour spaces converted to RGB) to be written as PNG. All None when the image cannot be
        read.
    """
    if xref <= 0:
        return None, "", None
    try:
        filt = doc.xref_get_key(xref, "Filter")[1]
    except Exception:
        filt = ""
    if flate == "keep" and "FlateDecode" in filt:
        kept = stored_flate(doc, xref)
        if kept is not None:
            return kept[0], kept[1], None
    if "DCTDecode" not in filt:
        # no file form stored: skip extract_image, which would build a PNG only to be thrown away
        return None, "png", _decoded(doc, xref, _smask_xref(doc, xref))
    info = doc.extract_image(xref)
    if not info:
        return None, "", None
    ext = str(info.get("ext", "")).lower()
    smask = int(info.get("smask", 0) or 0)
    n_colours = int(info.get("colorspace", 3) or 3)
    if ext in NATIVE_FORMATS and not smask and n_colours in (1, 3):
        return info["image"], NATIVE_FORMATS[ext], None
    return None, "png", _decoded(doc, xref, smask)


def stored_flate(doc, xref: int) -> tuple[bytes, str] | None:
    """A Flate image's stored stream, unchanged, in the file format that holds it as it is.

    A PDF's Flate image is a zlib stream of its rows. With a PNG predictor (``/Predictor`` 10-15,
    as pdfTeX stores a PNG it includes) the stream is a PNG's IDAT data, so it goes into a PNG;
    without a predictor (or with the TIFF one) it is a Deflate TIFF strip, so it goes into a
    TIFF (one strip). Neither is decoded nor re-encoded: the file is the stored bytes with a
    header, so it costs nothing and is as exact as the PDF. The image's ICC profile goes with it.

    Only plain images qualify: a single FlateDecode filter, 8 (or 16, big-endian as in the PDF
    and PNG) bits of DeviceGray, DeviceRGB or ICCBased grey/RGB, no /Decode array, no mask
    (/SMask, /Mask, /ImageMask). Returns ``(bytes, "png" | "tif")``, or None for the others (the
    caller decodes them).
    """
    try:
        key = doc.xref_get_key
        if key(xref, "Filter")[1] not in ("/FlateDecode", "[/FlateDecode]"):
            return None
        if any(key(xref, k)[0] != "null" for k in ("SMask", "Mask", "Decode")) \
                or key(xref, "ImageMask")[1] == "true":
            return None
        width, height = int(key(xref, "Width")[1]), int(key(xref, "Height")[1])
        bits = int(key(xref, "BitsPerComponent")[1])
        colours, icc = _plain_colour_space(doc, xref)
        if bits not in (8, 16) or colours not in (1, 3) or width <= 0 or height <= 0:
            return None
        kind, parms = key(xref, "DecodeParms")
        predictor = 1
        if kind == "array":        # one filter: an array holds its one dictionary
            parms = parms.strip()[1:-1].strip()
            kind = "dict" if parms.startswith("<<") else kind
        if kind == "dict":
            predictor = _int_in(parms, "Predictor", 1)
            # a predictor works on rows of Colors x Columns samples: they must be the image's
            if predictor > 1 and (_int_in(parms, "Colors", 1) != colours
                                    or _int_in(parms, "BitsPerComponent", 8) != bits
                                    or _int_in(parms, "Columns", 1) != width):
                return None
        elif kind != "null":
            return None
        data = doc.xref_stream_raw(xref)
    except Exception:
        return None
    if not data:
        return None
    if predictor >= 10:
        return png_from_idat(data, width, height, bits, colours, icc), "png"
    if predictor not in (1, 2) or (predictor == 2 and bits != 8):
        return None
    return tiff_from_deflate(data, width, height, bits, colours, icc, predictor == 2), "tif"


def _int_in(parms: str, name: str, default: int) -> int:
    m = re.search(rf"/{name}\s+(\d+)", parms)
    return int(m.group(1)) if m else default


def _plain_colour_space(doc, xref: int) -> tuple[int, bytes | None]:
    """(components, ICC profile or None) of DeviceGray/DeviceRGB/ICCBased; (0, None) otherwise."""
    kind, value = doc.xref_get_key(xref, "ColorSpace")
    if kind == "xref":                  # an indirect array, e.g. [/ICCBased 12 0 R]
        value = doc.xref_object(int(value.split()[0]), compressed=True)
    value = value.strip()
    if value in ("/DeviceGray", "/DeviceRGB"):
        return (1 if value == "/DeviceGray" else 3), None
    m = re.fullmatch(r"\[\s*/ICCBased\s+(\d+)\s+\d+\s+R\s*\]", value)
    if m is None:
        return 0, None
    icc = int(m.group(1))
    n = doc.xref_get_key(icc, "N")
    if n[0] != "int":
        return 0, None
    return int(n[1]), doc.xref_stream(icc)


def _smask_xref(doc, xref: int) -> int:
    kind, value = doc.xref_get_key(xref, "SMask")
    return int(value.split()[0]) if kind == "xref" else 0


def _decoded(doc, xref: int, smask: int) -> np.ndarray | None:
    """The image's pixels: SMask applied as alpha, CMYK/Lab/indexed converted to RGB."""
    import pymupdf

    try:
        pix = pymupdf.Pixmap(doc, xref)
        if smask:
            try:
                mask = pymupdf.Pixmap(doc, smask)
                base = pymupdf.Pixmap(pix, 0) if pix.alpha else pix
                if base.colorspace is not None and base.colorspace.n > 3:
                    base = pymupdf.Pixmap(pymupdf.csRGB, base)
                pix = pymupdf.Pixmap(base, mask)
            except Exception:
                pass          # keep the base image when its mask does not fit
        return pixmap_array(pix)
    except Exception:
        return None


def render_region(page, bbox: Box, dpi: int, recording=None) -> np.ndarray:
    """A page region rendered at ``dpi``: (H, W) uint8 when every pixel is grey (R = G = B, as
    in a figure of CT images), else (H, W, 3) uint8 RGB.

    ``recording``, the page's :func:`display_list`, saves running the page again; it is used
    only on an unrotated page (it is recorded unrotated, and renderings show the page turned).
    """
    import pymupdf

    if recording is None or page.rotation:
        pix = page.get_pixmap(clip=pymupdf.Rect(*bbox), dpi=dpi, alpha=False)
    else:   # what Page.get_pixmap does with the display list it makes
        zoom = dpi / 72
        pix = recording.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csRGB,
                                   alpha=False, clip=pymupdf.Rect(*bbox))
    return grey_if_grey(pixmap_array(pix))


def grey_if_grey(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) with R = G = B everywhere as (H, W); anything else as it is. Lossless, and the
    PNG is a third of the data to compress."""
    from covtool.core.imageio import grey_channel

    if img.ndim != 3 or img.shape[2] != 3:
        return img
    grey = grey_channel(img)
    return img if grey is None else grey


def decode_bytes(data: bytes) -> np.ndarray:
    """Pixels of an encoded image (JPEG/PNG) with the file's own depth: grey stays (H, W),
    colour is (H, W, 3|4) RGB(A), 16-bit PNG stays uint16."""
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        import pymupdf

        return pixmap_array(pymupdf.Pixmap(data))
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return img
