"""One image decoder for every stage: the format is sniffed from the file's bytes, never its name.

Every stage that reads an image (ingest ``--verify``, train, eval, explain, features, select,
patient-diagnose) goes through :func:`read_image`, so whatever ingest accepts, the later stages read.
The first bytes of the file name its format: PNG (``\\x89PNG``), JPEG (``FF D8 FF``), TIFF and
BigTIFF (``II*``/``MM*``, ``II+``/``MM+``), BMP (``BM`` and a known header size), PGM/PPM/PBM
(``P1``..``P6``), DICOM (``DICM`` at offset 128; a ``.dcm``/``.dicom`` file without the preamble is
taken as DICOM by its name). A name that says otherwise (COVID-CT's ``.png`` files holding JPEG
data) is not an error: :func:`suffix_mismatch` says so, for information.

TIFF (8/16-bit, float) goes through tifffile, PNG/JPEG/BMP/PNM through OpenCV
(``IMREAD_UNCHANGED``, so a 16-bit PNG stays ``uint16``; no EXIF rotation, as PIL), DICOM through
pydicom. The image comes back with the file's own dtype and layout: (H, W) grey, (H, W, 2) grey and
alpha, (H, W, 3) RGB, (H, W, 4) RGBA; anything else is an error. :func:`to_channels` is the one
conversion of those layouts to what a model takes (docs/images.md). Every failure is an
:class:`ImageError` naming the file.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import struct
from pathlib import Path

import numpy as np

from covtool.core.atomic import atomic_path, atomic_write_bytes
from covtool.core.errors import ImageError

TIFF_SUFFIXES = {".tif", ".tiff"}
OPENCV_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pbm", ".pnm"}
DICOM_SUFFIXES = {".dcm", ".dicom"}
IMAGE_SUFFIXES = TIFF_SUFFIXES | OPENCV_SUFFIXES | DICOM_SUFFIXES

#: the formats :func:`read_image` decodes, by the name :func:`sniff_format` gives them
FORMATS = ("png", "jpeg", "tiff", "bmp", "pnm", "dicom")
#: what a file name's suffix claims
SUFFIX_FORMAT = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff",
                 ".bmp": "bmp", ".pgm": "pnm", ".ppm": "pnm", ".pbm": "pnm", ".pnm": "pnm",
                 ".dcm": "dicom", ".dicom": "dicom"}
#: formats recognised only to name them in the error
_UNSUPPORTED = ((b"GIF87a", "GIF"), (b"GIF89a", "GIF"), (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
                (b"\xff\x4f\xff\x51", "JPEG 2000"), (b"%PDF", "PDF"), (b"8BPS", "Photoshop"))
_BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}
HEAD_BYTES = 132  # enough for DICOM's 'DICM' at offset 128


def is_image_file(path: str | os.PathLike) -> bool:
    """A name that looks like an image (a folder scan's filter; the content decides the format)."""
    p = Path(path)
    return p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def sniff_format(head: bytes, suffix: str = "") -> str | None:
    """The format of a file from its first :data:`HEAD_BYTES` bytes (one of :data:`FORMATS`), or
    None. ``suffix`` only matters for DICOM written without its 128-byte preamble."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:2] == b"BM" and len(head) >= 18 and struct.unpack("<I", head[14:18])[0] in _BMP_HEADER_SIZES:
        return "bmp"
    if len(head) >= 3 and head[:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
        return "pnm"
    if head[128:132] == b"DICM" or (suffix.lower() in DICOM_SUFFIXES and len(head) >= 8):
        return "dicom"
    return None


def suffix_mismatch(path: str | os.PathLike, fmt: str) -> str | None:
    """``"'x.png' holds JPEG data"`` when the name claims another format than the content (for
    information: it is read all the same), else None."""
    claimed = SUFFIX_FORMAT.get(Path(path).suffix.lower())
    if claimed is None or claimed == fmt:
        return None
    return f"'{Path(path).name}' holds {fmt.upper()} data"


def _open(path: Path):
    """The file, unbuffered (the decoders read large blocks); errors say what the path is."""
    try:
        return open(path, "rb", buffering=0)
    except FileNotFoundError:
        raise ImageError("no such image file", path) from None
    except IsADirectoryError:
        raise ImageError("is a folder, expected an image file", path) from None
    except OSError as exc:
        if path.is_dir():
            raise ImageError("is a folder, expected an image file", path) from None
        raise ImageError(f"cannot read ({exc.strerror})", path) from None


def _read_head(path: Path) -> bytes:
    with _open(path) as fh:
        return fh.read(HEAD_BYTES)


def image_format(path: str | os.PathLike) -> str:
    """The format of an image file by its content (one of :data:`FORMATS`); ImageError otherwise."""
    path = Path(path)
    return _format_of(path, _read_head(path))


def _format_of(path: Path, head: bytes) -> str:
    fmt = sniff_format(head, path.suffix)
    if fmt is not None:
        return fmt
    if not head:
        raise ImageError("empty file", path)
    for magic, name in _UNSUPPORTED:
        if head.startswith(magic):
            raise ImageError(f"unsupported image format {name}", path)
    raise ImageError("not an image file: its content is none of PNG, JPEG, TIFF, BMP, PGM/PPM, "
                     "DICOM", path)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image by its content, with its own dtype.

    The size its header claims is checked before decoding (:data:`MAX_IMAGE_PIXELS`), and any
    decoder failure (OpenCV's, tifffile's, pydicom's, memory) is an :class:`ImageError` naming
    the file.

    Returns
    -------
    img : ndarray (H, W), (H, W, 2), (H, W, 3) or (H, W, 4)
        ``uint8``/``uint16``/``float32``... as stored; grey, grey and alpha, RGB or RGBA.
    """
    path = Path(path)
    try:
        with _open(path) as fh:  # one open: the head names the format, the decoder reads on
            head = fh.read(HEAD_BYTES)
            fmt = _format_of(path, head)
            fh.seek(0)
            if fmt == "tiff":
                img = _read_tiff(path, fh)
            elif fmt != "dicom":
                img = _read_opencv(path, fmt, np.frombuffer(fh.readall(), dtype=np.uint8))
        if fmt == "dicom":
            img = _read_dicom(path)
    except ImageError:
        raise
    except MemoryError:
        raise ImageError("not enough memory to decode the image", path) from None
    except Exception as exc:  # noqa: BLE001 - a decoder's own error on a damaged file: one line
        raise ImageError(f"unreadable image ({type(exc).__name__}: {_reason(exc)})", path) from None
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.size == 0 or not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] <= 4)):
        raise ImageError(f"unexpected image shape {img.shape} (grey, grey and alpha, RGB or RGBA "
                         "expected)", path)
    return img


#: the most pixels (width x height, any channels) :func:`read_image` decodes: 2**28, a
#: 16384 x 16384 image (256 MiB a channel at 8 bits, 2 GiB as 16-bit RGBA). A header claiming
#: more (a damaged header, or an image no stage here is made for) is an ImageError before any
#: decoding, rather than a decoder's allocation failure or OpenCV's own limit (2**30) as a traceback
MAX_IMAGE_PIXELS = 2**28


def check_size(path: Path, height: int, width: int, frames: int = 1) -> None:
    """Refuse an image whose header claims more than :data:`MAX_IMAGE_PIXELS` pixels."""
    if height * width * max(frames, 1) > MAX_IMAGE_PIXELS:
        what = f"{width}x{height}" + (f"x{frames} frames" if frames > 1 else "")
        raise ImageError(f"its header claims {what} pixels, over the decoder's limit of "
                         f"{MAX_IMAGE_PIXELS} (2^28) pixels (a damaged header, or too large)", path)


def header_size(fmt: str, data: bytes | memoryview) -> tuple[int, int] | None:
    """``(height, width)`` from the first bytes of a PNG, JPEG, BMP or PGM/PPM file (no decoding),
    or None where the header does not say (the decoder then judges the file)."""
    data = bytes(data[:65536]) if fmt == "jpeg" else bytes(data[:1024])
    if fmt == "png" and len(data) >= 24 and data[12:16] == b"IHDR":
        w, h = struct.unpack(">II", data[16:24])
        return h, w
    if fmt == "jpeg":
        frame = _jpeg_frame(io.BytesIO(data))
        return None if frame is None else frame[:2]
    if fmt == "bmp" and len(data) >= 26:
        if struct.unpack("<I", data[14:18])[0] == 12:
            w, h = struct.unpack("<HH", data[18:22])
        else:
            w, h = struct.unpack("<ii", data[18:26])
        return abs(h), abs(w)
    if fmt == "pnm":
        tokens = re.sub(rb"#[^\n\r]*", b" ", data[2:]).split()
        if len(tokens) >= 2 and tokens[0].isdigit() and tokens[1].isdigit():
            return int(tokens[1]), int(tokens[0])
    return None


class _Captured(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _tifffile_log():
    """Keep tifffile's own warnings off stderr; they become part of our one-line error."""
    logger = logging.getLogger("tifffile")
    handler = _Captured()
    old_propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = old_propagate


def _read_tiff(path: Path, fh=None) -> np.ndarray:
    import tifffile

    with _tifffile_log() as log:
        try:
            with tifffile.TiffFile(path if fh is None else fh, name=path.name) as tif:
                if not tif.pages:
                    hint = f": {log[-1].split('>')[-1].strip()}" if log else ""
                    raise ImageError(f"unreadable TIFF (no image{hint})", path)
                page = tif.pages[0]
                check_size(path, *_tiff_size(page))
                img = page.asarray()
                if img.size != int(np.prod(page.shape)):
                    raise ImageError("truncated TIFF", path)
        except ImageError:
            raise
        except Exception as exc:  # tifffile raises many types for damaged files
            raise ImageError(f"unreadable TIFF ({_reason(exc)})", path) from None
    if img.ndim == 3 and img.shape[0] in (3, 4) and img.shape[-1] not in (3, 4):
        img = np.moveaxis(img, 0, -1)  # planar RGB
    return img


def _tiff_size(page) -> tuple[int, int, int]:
    """``(height, width, frames)`` of a TIFF page, from its tags."""
    frames = int(getattr(page, "imagedepth", 1) or 1)
    return int(page.imagelength), int(page.imagewidth), frames


def _read_opencv(path: Path, fmt: str, data: np.ndarray) -> np.ndarray:
    import cv2

    if data.size == 0:
        raise ImageError("empty file", path)
    size = header_size(fmt, data)
    if size is not None:
        check_size(path, *size)
    _quiet_opencv()
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageError(f"unreadable or truncated {fmt.upper()} image", path)
    if img.ndim == 3 and img.shape[2] in (3, 4):
        code = cv2.COLOR_BGRA2RGBA if img.shape[2] == 4 else cv2.COLOR_BGR2RGB
        img = cv2.cvtColor(img, code)
    return img


_OPENCV_QUIET = False


def _quiet_opencv() -> None:
    """OpenCV's own log lines about a damaged file stay off stderr (once per process; changing the
    level around each call would race between tf.data's threads): the ImageError says it."""
    global _OPENCV_QUIET
    if not _OPENCV_QUIET:
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        _OPENCV_QUIET = True


def _read_dicom(path: Path) -> np.ndarray:
    # as select reads it (covtool.core.dicom): an image in HU on COVID-CTset's stored scale
    # (HU + 1024, uint16), whatever its scanner's slope and intercept, others as stored; axial
    # images in the radiologist's view; compressed syntaxes through pylibjpeg
    from covtool.core.dicom import read_dicom_image, read_header

    h = read_header(path)
    if h is not None:
        check_size(path, h.rows, h.columns, h.frames)
    return read_dicom_image(path)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__


def grey_channel(img: np.ndarray) -> np.ndarray | None:
    """The one channel of a grey image as an (H, W) array, None when it has colour. Grey: 2-D
    (returned as it is), one channel, two (grey and alpha: the alpha is dropped), or colour
    channels equal at every pixel (a grey image stored as RGB(A)); a channel taken out of an
    image with channels is contiguous.

    8- and 16-bit images are checked in one pass through OpenCV's RGB to grey conversion: its
    weights sum to exactly 1 in fixed point, so it gives v where R = G = B = v, and a pixel equals
    its grey value in all three channels only where it is grey. Tested on every 8- and 16-bit
    value (tests/core/test_imageio.py). Other dtypes compare the channels directly.
    """
    if img.ndim == 2:
        return img
    if img.shape[2] <= 2:
        return _channels(img, 1)
    chans = _channels(img, 3)
    if chans.dtype in (np.uint8, np.uint16) and chans.size:
        import cv2

        grey = cv2.cvtColor(chans, cv2.COLOR_RGB2GRAY)
        return grey if cv2.norm(chans, cv2.merge([grey, grey, grey]), cv2.NORM_INF) == 0 else None
    if np.array_equal(chans[..., 0], chans[..., 1]) and np.array_equal(chans[..., 0], chans[..., 2]):
        return np.ascontiguousarray(chans[..., 0])
    return None


def _channels(img: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` channels (1 or 3) of (H, W, C) as a contiguous array (the grey one as (H, W)).
    OpenCV does it for its dtypes: numpy's copy of a strided view is 20-70x slower."""
    if img.shape[2] == n:
        return np.ascontiguousarray(img) if n > 1 else np.ascontiguousarray(img[..., 0])
    if img.dtype in (np.uint8, np.uint16, np.float32) and img.flags.c_contiguous and img.size:
        import cv2

        if n == 1:
            return cv2.extractChannel(img, 0)
        if img.shape[2] == 4:
            return cv2.cvtColor(img, cv2.COLOR_RGBA2RGB)
    return np.ascontiguousarray(img[..., 0] if n == 1 else img[..., :n])


def is_colour(img: np.ndarray) -> bool:
    """True for images with colour channels that differ (a grey image stored as RGB is not)."""
    return grey_channel(img) is None


def to_gray(img: np.ndarray) -> np.ndarray:
    """The single channel of a grey image stored with channels (no colour conversion): a view,
    except where an alpha channel is not opaque, which is composited on black as everywhere
    (:func:`composite_alpha`)."""
    if img.ndim == 2:
        return img
    if img.shape[2] in (2, 4):
        img = composite_alpha(img)
        if img.ndim == 2:
            return img
    return img[..., 0]


#: ITU-R BT.601 luma weights (TensorFlow's rgb_to_grayscale, PIL's "L", OpenCV's RGB2GRAY)
LUMA = (0.299, 0.587, 0.114)


def composite_alpha(img: np.ndarray) -> np.ndarray:
    """Grey and alpha or RGBA -> grey or RGB, composited on black: ``value * alpha / alpha_max``
    (alpha_max is the dtype's maximum, 1.0 for floats). Other layouts come back as they are.

    An opaque image loses its alpha and keeps its values and dtype (every RGBA image of COVID-CT);
    a partly transparent one becomes float32. Black because a transparent pixel carries no signal
    and black is the air around a CT body, so a transparent margin reads as background, never as
    bright tissue. An alpha that is 0 everywhere is taken as unused and dropped (an image that
    shows nothing at all is not what anyone stores).
    """
    if img.ndim != 3 or img.shape[2] not in (2, 4):
        return img
    colour = _channels(img, 1 if img.shape[2] == 2 else 3)
    alpha = img[..., -1]
    top = np.iinfo(img.dtype).max if np.issubdtype(img.dtype, np.integer) else 1.0
    if img.dtype in (np.uint8, np.uint16) and img.flags.c_contiguous:
        import cv2

        lo, hi = cv2.minMaxLoc(cv2.extractChannel(img, img.shape[2] - 1))[:2]
    else:
        lo, hi = float(alpha.min()), float(alpha.max())
    if lo >= top or hi == 0:
        return colour
    weight = alpha.astype(np.float32) / np.float32(top)
    if colour.ndim == 3:
        weight = weight[..., None]
    return colour.astype(np.float32) * weight


def luma(img: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) -> float32 (H, W): ITU-R BT.601 ``0.299 R + 0.587 G + 0.114 B``, unrounded."""
    import cv2

    rgb = np.ascontiguousarray(img[..., :3], dtype=np.float32)
    if not rgb.size:
        return rgb[..., 0]
    y = cv2.transform(rgb, np.array([LUMA], np.float32))  # one output channel: OpenCV gives (H, W)
    return y.reshape(rgb.shape[:2])


def to_grey(img: np.ndarray) -> np.ndarray:
    """Any layout :func:`read_image` returns -> (H, W): alpha composited on black
    (:func:`composite_alpha`), then a grey image's one channel as stored (dtype kept; a grey image
    stored as RGB is found exactly, :func:`grey_channel`), or a colour image's float32 luma."""
    img = composite_alpha(img)
    grey = grey_channel(img)
    return grey if grey is not None else luma(img)


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """The one conversion of a decoded image to a model's input layout, (H, W, ``channels``).

    Alpha composited on black (:func:`composite_alpha`). ``channels`` 1: :func:`to_grey`.
    ``channels`` 3: RGB as it is; grey repeated in the three channels (a broadcast view, no copy).
    Values and dtype are kept wherever no arithmetic is needed (the pipeline casts to float32).
    """
    img = composite_alpha(img)
    if channels == 1:
        return to_grey(img)[:, :, None]
    if channels != 3:
        raise ValueError(f"images go to 1 or 3 channels, not {channels}")
    if img.ndim == 3 and img.shape[2] == 3:
        return img
    grey = img if img.ndim == 2 else img[..., 0]
    return np.broadcast_to(grey[:, :, None], (*grey.shape, 3))


def stored_channels(path: str | os.PathLike) -> int | None:
    """How many channels an image file stores, from its header alone (no decoding): PNG, JPEG,
    PGM/PPM, TIFF and DICOM (SamplesPerPixel, read without the pixels); None for other formats
    or a header that does not say."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
            fmt = sniff_format(head, path.suffix)
            if fmt == "png" and len(head) >= 26 and head[12:16] == b"IHDR":
                return {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(head[25])
            if fmt == "pnm":
                return 1 if head[1:2] in b"1245" else 3
            if fmt == "jpeg":
                return _jpeg_components(fh)
            if fmt == "tiff":
                import tifffile

                fh.seek(0)
                with tifffile.TiffFile(fh) as tif:
                    return int(tif.pages[0].samplesperpixel) if tif.pages else None
            if fmt == "dicom":
                from covtool.core.dicom import read_header

                h = read_header(path)
                return h.samples if h is not None else None
    except Exception:  # noqa: BLE001 - a header that does not say: the caller decodes
        return None
    return None


def _jpeg_components(fh) -> int | None:
    """The component count of a JPEG's frame header (SOFn)."""
    frame = _jpeg_frame(fh)
    return None if frame is None else frame[2]


def _jpeg_frame(fh) -> tuple[int, int, int] | None:
    """``(height, width, components)`` of a JPEG's frame header (SOFn), walking the marker
    segments; None where there is none before the scan."""
    fh.seek(2)
    while True:
        marker = fh.read(4)
        if len(marker) < 4 or marker[0] != 0xFF:
            return None
        kind, length = marker[1], struct.unpack(">H", marker[2:])[0]
        if kind in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            frame = fh.read(6)
            if len(frame) != 6:
                return None
            h, w = struct.unpack(">HH", frame[1:5])
            return h, w, frame[5]
        if kind == 0xDA:  # start of scan before any frame header
            return None
        fh.seek(length - 2, 1)


def write_image(path: str | os.PathLike, img: np.ndarray, force: bool = False,
                compress: bool = False, params: list[int] | None = None) -> Path:
    """Write atomically; TIFF keeps any dtype, PNG keeps 8/16-bit. ``params``: OpenCV's
    ``imencode`` flags for PNG/JPEG."""
    import cv2

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in OPENCV_SUFFIXES:       # encoded in memory: one file opened, not two
        out = img
        if img.ndim == 3 and img.shape[2] in (3, 4):
            out = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA if img.shape[2] == 4 else cv2.COLOR_RGB2BGR)
        try:
            ok, data = cv2.imencode(suffix, out, params or [])
        except cv2.error as exc:
            reason = str(exc).strip().splitlines()[-1][:160]
            raise ImageError(f"OpenCV cannot write {img.dtype} as {suffix} ({reason})", path) from None
        if not ok:
            raise ImageError(f"OpenCV cannot write {img.dtype} as {suffix}", path)
        return atomic_write_bytes(path, data.data, force=force)
    if suffix not in TIFF_SUFFIXES:
        raise ImageError(f"unsupported output format '{suffix}'", path)
    with atomic_path(path, force) as tmp:
        import tifffile

        photometric = "rgb" if img.ndim == 3 and img.shape[2] in (3, 4) else "minisblack"
        tifffile.imwrite(tmp, img, photometric=photometric, compression="zlib" if compress else None)
    return path
