"""PyMuPDF at the edge: opening PDFs, reading pages into :class:`PageLayout`, getting images out.

Everything that touches ``pymupdf`` lives here so the algorithms stay testable on plain data.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np

from covtool.core.errors import CovtoolError
from covtool.pdf.layout import Box, ImagePlacement, PageLayout, TextLine

#: encodings stored in the PDF as files, kept byte for byte (JPEG: re-encoding would lose
#: quality). Flate images have no file form (MuPDF would synthesise an RGB PNG even for grey
#: images), so they, JPX, JBIG2 and CCITT are decoded losslessly and written as PNG.
NATIVE_FORMATS = {"jpeg": "jpg", "jpg": "jpg"}
DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>,;]+)", re.IGNORECASE)


class PdfError(CovtoolError):
    """A PDF that cannot be processed: not a PDF, damaged, encrypted or empty."""


def open_pdf(path: str | os.PathLike):
    """Open a PDF for reading, or raise :class:`PdfError` with the reason."""
    import pymupdf

    path = Path(path)
    if not path.exists():
        raise PdfError("no such file", path)
    if path.is_dir():
        raise PdfError("is a folder, expected a PDF", path)
    if path.stat().st_size == 0:
        raise PdfError("empty file", path)
    with open(path, "rb") as fh:
        head = fh.read(1024)
    if b"%PDF" not in head:
        raise PdfError("not a PDF (no %PDF header)", path)
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as exc:  # MuPDF raises its own types for broken files
        raise PdfError(f"damaged PDF ({_reason(exc)})", path) from None
    if doc.needs_pass:
        doc.close()
        raise PdfError("encrypted PDF (needs a password)", path)
    if doc.page_count == 0:
        doc.close()
        raise PdfError("PDF has no pages", path)
    return doc


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__


def read_page(page, with_drawings: bool = True, cluster_tolerance: float = 3.0,
              digests: dict[int, str] | None = None) -> PageLayout:
    """A PyMuPDF page as a :class:`PageLayout` (text lines, drawn images, drawing clusters).

    ``digests`` caches the image digests of the document by xref: the MD5 of the image's stored
    stream (hashing the stored bytes, not the decoded pixels, keeps this cheap). Placements come
    from ``get_image_info`` and are matched to the page's image XObjects by pixel size; only
    XObjects sharing a size on the page need ``get_image_rects`` (which hashes pixels). Inline
    images (no XObject; small by the PDF standard's intent) are left out.
    """
    lines: list[TextLine] = []
    data = page.get_text("dict", flags=0)   # no images: their bytes are not needed here
    for bi, block in enumerate(data.get("blocks", [])):
        if block.get("type", 0) != 0:
            continue
        for line in block.get("lines", []):
            spans = [s for s in line.get("spans", []) if s.get("text", "").strip()]
            if not spans:
                continue
            text = "".join(s["text"] for s in line["spans"])
            size = max(s.get("size", 0.0) for s in spans)
            bold = bool(spans[0].get("flags", 0) & 16) or "bold" in spans[0].get("font", "").lower()
            lines.append(TextLine(tuple(line["bbox"]), text, float(size), bold, bi))
    digests = {} if digests is None else digests
    doc = page.parent
    by_size: dict[tuple[int, int], list[int]] = {}
    for item in page.get_images(full=True):
        xref = int(item[0])
        by_size.setdefault((int(item[2]), int(item[3])), []).append(xref)
        if xref not in digests:
            try:
                digests[xref] = hashlib.md5(doc.xref_stream_raw(xref) or b"").hexdigest()
            except Exception:
                digests[xref] = f"xref{xref}"
    images = []
    ambiguous: set[int] = set()
    for info in page.get_image_info():          # every placement; no pixel hashing (slow)
        size = (int(info.get("width", 0)), int(info.get("height", 0)))
        xrefs = by_size.get(size, [])
        bbox = tuple(float(v) for v in info["bbox"])
        if len(xrefs) == 1:
            images.append(ImagePlacement(bbox, xrefs[0], size[0], size[1], digests[xrefs[0]]))
        elif xrefs:
            ambiguous.update(xrefs)
        # no xref of that size: an inline image (small by the standard's intent), left out
    for xref in sorted(ambiguous):              # same pixel size: ask MuPDF where each one is
        try:
            rects = page.get_image_rects(xref)
        except Exception:
            rects = []
        w, h = next(k for k, v in by_size.items() if xref in v)
        for rect in rects:
            if not (rect.is_empty or rect.is_infinite):
                images.append(ImagePlacement(tuple(float(v) for v in rect), xref, w, h, digests[xref]))
    r = page.rect
    layout = PageLayout(page.number, float(r.width), float(r.height), lines, images, [])
    if with_drawings:
        layout.drawings = read_drawings(page, cluster_tolerance)
    return layout


def read_drawings(page, cluster_tolerance: float = 3.0) -> list[Box]:
    """The page's vector drawings, clustered into boxes (``Page.cluster_drawings``)."""
    try:
        paths = page.get_drawings()
        if not paths:
            return []
        return [tuple(r) for r in page.cluster_drawings(drawings=paths, x_tolerance=cluster_tolerance,
                                                        y_tolerance=cluster_tolerance)]
    except Exception:  # a broken content stream must not lose the page's raster figures
        return []


def doc_title_doi(doc, first: PageLayout | None = None) -> tuple[str, str]:
    """The paper's title and DOI, from the PDF's metadata or else from its first pages."""
    meta = doc.metadata or {}
    title = (meta.get("title") or "").strip()
    if not _plausible_title(title):
        title = _largest_text(first) if first is not None else ""
    doi = ""
    for field in ("subject", "keywords", "title"):
        m = DOI.search(meta.get(field) or "")
        if m:
            doi = m.group(1)
            break
    if not doi:
        for pno in range(min(2, doc.page_count)):
            m = DOI.search(doc[pno].get_text("text"))
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


def pixmap_array(pix) -> np.ndarray:
    """A PyMuPDF Pixmap as (H, W) or (H, W, 3|4) uint8, RGB(A)."""
    import pymupdf

    if pix.colorspace is not None and pix.colorspace.n not in (1, 3):
        pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
    arr = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width, pix.n)
    if arr.shape[2] == 1:
        arr = arr[..., 0]
    elif arr.shape[2] == 2:          # grey + alpha: drop the alpha (backgrounds stay grey)
        arr = arr[..., 0]
    return arr.copy()


def native_image(doc, xref: int) -> tuple[bytes | None, str, np.ndarray | None]:
    """An embedded image, losslessly.

    Returns
    -------
    (data, ext, pixels)
        ``data``/``ext`` are the stored bytes and their suffix when the encoding is kept as is
        (JPEG without transparency, grey or RGB); otherwise ``data`` is None and ``pixels`` holds
        the decoded image (SMask applied, CMYK and other colour spaces converted to RGB) to be
        written as PNG. All None when the image cannot be read.
    """
    if xref <= 0:
        return None, "", None
    try:
        filt = doc.xref_get_key(xref, "Filter")[1]
    except Exception:
        filt = ""
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


def render_region(page, bbox: Box, dpi: int) -> np.ndarray:
    """A page region rendered at ``dpi``: (H, W, 3) uint8 RGB."""
    import pymupdf

    pix = page.get_pixmap(clip=pymupdf.Rect(*bbox), dpi=dpi, alpha=False)
    return pixmap_array(pix)


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
