"""Image reading and writing that keeps the file's own dtype.

TIFF (8/16-bit, float) goes through tifffile, PNG/JPEG/BMP through OpenCV (``IMREAD_UNCHANGED``,
so a 16-bit PNG stays ``uint16``), DICOM through pydicom when it is installed. Colour images are
returned RGB, shape (H, W, 3). Every failure is an :class:`ImageError` naming the file.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import numpy as np

from covtool.core.atomic import atomic_path, atomic_write_bytes
from covtool.core.errors import ImageError

TIFF_SUFFIXES = {".tif", ".tiff"}
OPENCV_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm"}
DICOM_SUFFIXES = {".dcm", ".dicom"}
IMAGE_SUFFIXES = TIFF_SUFFIXES | OPENCV_SUFFIXES | DICOM_SUFFIXES


def is_image_file(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image with its own dtype.

    Returns
    -------
    img : ndarray (H, W) or (H, W, C)
        ``uint8``/``uint16``/``float32``... as stored; colour as RGB(A).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise ImageError("no such image file", path)
    if path.is_dir():
        raise ImageError("is a folder, expected an image file", path)
    if suffix in TIFF_SUFFIXES:
        img = _read_tiff(path)
    elif suffix in DICOM_SUFFIXES:
        img = _read_dicom(path)
    elif suffix in OPENCV_SUFFIXES:
        img = _read_opencv(path)
    else:
        raise ImageError(f"unsupported image format '{suffix or 'no suffix'}'", path)
    if img.ndim not in (2, 3) or img.size == 0:
        raise ImageError(f"unexpected image shape {img.shape}", path)
    return img


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


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    with _tifffile_log() as log:
        try:
            with tifffile.TiffFile(path) as tif:
                if not tif.pages:
                    hint = f": {log[-1].split('>')[-1].strip()}" if log else ""
                    raise ImageError(f"unreadable TIFF (no image{hint})", path)
                page = tif.pages[0]
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


def _read_opencv(path: Path) -> np.ndarray:
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise ImageError("empty file", path)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageError(f"unreadable or truncated {path.suffix.lstrip('.').upper()} image", path)
    if img.ndim == 3:
        code = cv2.COLOR_BGRA2RGBA if img.shape[2] == 4 else cv2.COLOR_BGR2RGB
        img = cv2.cvtColor(img, code)
    return img


def _read_dicom(path: Path) -> np.ndarray:
    try:
        import pydicom
    except ImportError:
        raise ImageError("DICOM needs pydicom (pip install 'covtool[dicom]')", path) from None
    try:
        ds = pydicom.dcmread(path)
        # stored values, as COVID-CTset's TIFFs hold them (no rescale slope/intercept)
        return np.asarray(ds.pixel_array)
    except Exception as exc:
        raise ImageError(f"unreadable DICOM ({_reason(exc)})", path) from None


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
        return np.ascontiguousarray(img[..., 0])
    chans = np.ascontiguousarray(img[..., :3])
    if chans.dtype in (np.uint8, np.uint16) and chans.size:
        import cv2

        grey = cv2.cvtColor(chans, cv2.COLOR_RGB2GRAY)
        return grey if cv2.norm(chans, cv2.merge([grey, grey, grey]), cv2.NORM_INF) == 0 else None
    if np.array_equal(chans[..., 0], chans[..., 1]) and np.array_equal(chans[..., 0], chans[..., 2]):
        return np.ascontiguousarray(chans[..., 0])
    return None


def is_colour(img: np.ndarray) -> bool:
    """True for images with colour channels that differ (a grey image stored as RGB is not)."""
    return grey_channel(img) is None


def to_gray(img: np.ndarray) -> np.ndarray:
    """A single-channel view of a grey image stored with channels (no colour conversion)."""
    if img.ndim == 2:
        return img
    return img[..., 0]


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
