"""DICOM images: headers without pixels, and CT pixels on COVID-CTset's stored scale.

A CT image's stored values become Hounsfield units through its Rescale Slope and Intercept
(``HU = stored * slope + intercept``); scanners differ in how they store them (COVID-CTset's and
COVID-CT-MD's: unsigned, intercept -1024; many others: signed HU, intercept 0). covtool brings
every CT slice to one scale, the one COVID-CTset's TIFFs hold and its selection thresholds are
defined on: **HU + 1024** (its DICOM headers: slope 1, intercept -1024), rounded, clipped to
0..65535, ``uint16``. Air (-1000 HU) is 24, water 1024, the selection's dark level 300 is -724 HU.

Which images are in HU (:attr:`DicomHeader.is_hu`): a grey image whose Modality is CT, or whose
RescaleType is HU, or whose Modality is OT or absent (anonymised exports of CT) while it has a
RescaleIntercept and no other RescaleType. Those, and only those, go through the
modality LUT to HU + 1024, in :func:`read_dicom_image` (every stage's decoder) and in the
selection alike; any other image keeps its stored values.

Orientation (:func:`display_view`): an axial image is turned into the radiologist's view, the
frame of ImageOrientationPatient ``1,0,0,0,1,0`` (columns toward the patient's left, rows toward
posterior), by transposing and flipping its stored rows and columns as its orientation says
(feet-first ``-1,0,0,0,1,0``: columns flipped; prone ``-1,0,0,0,-1,0``: both flipped). Images
that are not axial, or carry no orientation, are kept as stored.

Compressed transfer syntaxes are decoded by pydicom's plugins (pylibjpeg with its libjpeg,
openjpeg and RLE decoders: JPEG Lossless, JPEG 2000, RLE). Uncompressed little-endian pixel data is
read straight from the file at the offset the header pass found (no second parse).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from covtool.core.errors import ImageError

#: COVID-CTset's stored value = HU + STORED_OFFSET
STORED_OFFSET = 1024
#: DICOMDIR files (Media Storage Directory Storage): an index of a media, not an image
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
_NATIVE_LE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}   # implicit / explicit VR little endian
_PIXEL_TAG = b"\xe0\x7f\x10\x00"                             # (7FE0,0010) little endian
NOT_DICOM = "not a DICOM file (no DICM magic, unreadable header)"
NO_PIXELS = "DICOM file without pixel data (not an image)"   # a complete header, no (7FE0,0010)


@dataclass
class DicomHeader:
    """What covtool needs of one DICOM image, read without its pixels."""

    path: Path
    series_uid: str
    series_number: int | None
    instance: int | None
    position: tuple[float, float, float] | None      # ImagePositionPatient, mm (LPS)
    orientation: tuple[float, ...] | None            # ImageOrientationPatient, 6 cosines
    rows: int
    columns: int
    image_type: tuple[str, ...]
    modality: str
    slope: float
    intercept: float
    transfer_syntax: str
    samples: int
    frames: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    pixel_offset: int | None    # offset of the pixel data element in the file, None when absent
    series_description: str = ""
    rescale_type: str = ""
    has_intercept: bool = False    # RescaleIntercept present
    photometric: str = ""
    patient_id: str = ""           # PatientID: which series belong to one patient

    @property
    def is_localizer(self) -> bool:
        return any(t.upper() == "LOCALIZER" for t in self.image_type)

    @property
    def is_hu(self) -> bool:
        """Whether the modality LUT (slope, intercept) gives Hounsfield units (module docstring)."""
        if self.samples != 1:
            return False
        modality = self.modality.upper()
        if modality == "CT" or self.rescale_type.upper() == "HU":
            return True
        return modality in ("OT", "") and self.has_intercept and not self.rescale_type

    @property
    def view(self) -> tuple[bool, bool, bool]:
        """``(transpose, flip_rows, flip_columns)`` into the radiologist's view."""
        return display_view(self.orientation)

    @property
    def display_shape(self) -> tuple[int, int]:
        return (self.columns, self.rows) if self.view[0] else (self.rows, self.columns)


def slice_normal(orientation) -> np.ndarray:
    """The unit normal of an image plane (row cosine x column cosine), signed toward the patient's
    superior (+z in DICOM's LPS) when it has a z component, so positions along it increase from
    feet to head whatever the patient's position on the table."""
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    n = np.cross(row, col)
    norm = np.linalg.norm(n)
    n = n / norm if norm > 0 else n
    return -n if n[2] < 0 else n


def is_axial(orientation) -> bool:
    """The plane closest to the axial one: the normal's largest component is along z."""
    a = np.abs(slice_normal(orientation))
    return bool(a[2] > 0 and a[2] >= a[0] and a[2] >= a[1])


def display_view(orientation) -> tuple[bool, bool, bool]:
    """``(transpose, flip_rows, flip_columns)`` that take an axial image stored with
    ImageOrientationPatient ``orientation`` to the frame of ``1,0,0,0,1,0``; identity for an
    image without orientation or not axial."""
    if orientation is None or not is_axial(orientation):
        return False, False, False
    row, col = orientation[:3], orientation[3:]   # along a row (columns grow), along a column
    if abs(row[0]) >= abs(row[1]):   # stored columns run along x: no transpose
        return False, col[1] < 0, row[0] < 0
    return True, row[1] < 0, col[0] < 0


def to_display(arr: np.ndarray, view: tuple[bool, bool, bool]) -> np.ndarray:
    """Stored ``(rows, columns[, samples])`` pixels in the radiologist's view (a view, no copy)."""
    transpose, flip_rows, flip_cols = view
    if transpose:
        arr = arr.swapaxes(0, 1)
    if flip_rows:
        arr = arr[::-1]
    if flip_cols:
        arr = arr[:, ::-1]
    return arr


def from_display(arr: np.ndarray, view: tuple[bool, bool, bool]) -> np.ndarray:
    """The inverse of :func:`to_display` (writers of DICOM files use it)."""
    transpose, flip_rows, flip_cols = view
    if flip_cols:
        arr = arr[:, ::-1]
    if flip_rows:
        arr = arr[::-1]
    return arr.swapaxes(0, 1) if transpose else arr


def _pydicom():
    """pydicom, with its warnings about damaged files kept off stderr (covtool's own one-line
    error names the file instead)."""
    import warnings

    import pydicom

    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\..*)?$")
    return pydicom


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__


_BINARY = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}


def _values(ds, keyword: str) -> list | None:
    """An element's values as text or numbers, from its raw bytes where pydicom left them raw
    (converting through pydicom costs more than parsing the whole header)."""
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.dataelem import RawDataElement

    tag = tag_for_keyword(keyword)
    el = ds.get_item(tag)
    if el is None:
        return None
    if not isinstance(el, RawDataElement):
        v = el.value
        if v is None or v == "":
            return None
        return [v] if isinstance(v, (str, bytes, int, float)) else list(v)
    raw = el.value
    if raw is None or len(raw) == 0:
        return None
    vr = el.VR or dictionary_VR(tag)
    if vr in _BINARY:
        little = getattr(ds, "original_encoding", (None, True))[1] is not False
        code = _BINARY[vr]
        n = len(raw) // struct.calcsize(code)
        return list(struct.unpack(("<" if little else ">") + code * n, raw[: n * struct.calcsize(code)]))
    text = raw.decode("latin-1").strip(" \0")
    return [t.strip(" \0") for t in text.split("\\")] if text else None


def _number(ds, name, cast, default=None):
    try:
        v = _values(ds, name)
        return default if not v or v[0] in (None, "") else cast(v[0])
    except (TypeError, ValueError):
        return default


def _floats(ds, name, n):
    try:
        v = _values(ds, name)
        return tuple(float(x) for x in v) if v is not None and len(v) == n else None
    except (TypeError, ValueError):
        return None


def _text(ds, name) -> str:
    v = _values(ds, name)
    return str(v[0]) if v else ""


def _image_class(ds) -> bool:
    """Whether the file's SOP class is an image storage class (CT, MR, Secondary Capture, ...)."""
    from pydicom.uid import UID

    meta = getattr(ds, "file_meta", None)
    uid = (str(meta.get("MediaStorageSOPClassUID", "")) if meta is not None else "") or _text(ds, "SOPClassUID")
    return bool(uid) and "Image Storage" in UID(uid).name


def _ends_short(ds) -> bool:
    """Whether the last element read holds fewer bytes than its length says (the file was cut in
    it: pydicom reads what there is, silently)."""
    from pydicom.dataelem import RawDataElement

    for group in (ds, getattr(ds, "file_meta", None)):
        if group is None or not len(group):
            continue
        last = group.get_item(list(group.keys())[-1])
        if isinstance(last, RawDataElement) and last.value is not None and last.length != 0xFFFFFFFF:
            return len(last.value) < last.length
        return False
    return False


def read_header(path: str | os.PathLike) -> DicomHeader | None:
    """The header of one DICOM file (pixels not read); None for a DICOMDIR.

    Raises :class:`ImageError` naming the file and what is wrong: not a DICOM file (no ``DICM``
    magic and no readable header), a DICOM file cut in its header (``truncated DICOM``: the file
    ends inside an element, or an image's header ends before its Rows/Columns), an unreadable
    header, and a complete header without pixel data (``DICOM file without pixel data``).
    """
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    try:
        with open(path, "rb") as fp:
            fp.seek(128)
            magic = fp.read(4) == b"DICM"
            fp.seek(0)
            try:
                ds = pydicom.dcmread(fp, stop_before_pixels=True)
            except InvalidDicomError:
                fp.seek(0)
                ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
            offset = fp.tell()
            tag = fp.read(4)
    except OSError as exc:
        raise ImageError(f"cannot read ({exc.strerror or exc})", path) from None
    except Exception as exc:  # pydicom raises many types for damaged files
        if not magic:
            raise ImageError(NOT_DICOM, path) from None
        raise ImageError(f"unreadable DICOM ({_reason(exc)})", path) from None
    meta = getattr(ds, "file_meta", None)
    sop = str(meta.get("MediaStorageSOPClassUID", "")) if meta is not None else ""
    if sop == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
        return None
    rows, cols = _number(ds, "Rows", int), _number(ds, "Columns", int)
    if not magic and not (sop or any(k in ds for k in ("SOPClassUID", "Modality", "Rows"))):
        raise ImageError(NOT_DICOM, path)
    has_pixels = tag[:2] in (b"\xe0\x7f", b"\x7f\xe0")  # (7FE0,xxxx): pixel data follows
    if not has_pixels:
        if not tag and (_ends_short(ds) or not len(ds) or _image_class(ds) and not (rows and cols)):
            raise ImageError(f"truncated DICOM (the file ends at byte {offset}, in its header: no "
                             "pixel data)", path)
        raise ImageError(NO_PIXELS, path)
    if not rows or not cols:
        raise ImageError("DICOM pixel data without Rows/Columns in the header (not a usable image)", path)
    image_type = tuple(str(t) for t in _values(ds, "ImageType") or ())
    ts = str(meta.get("TransferSyntaxUID", "1.2.840.10008.1.2")) if meta is not None else "1.2.840.10008.1.2"
    return DicomHeader(
        path=path,
        series_uid=_text(ds, "SeriesInstanceUID"),
        series_number=_number(ds, "SeriesNumber", int),
        instance=_number(ds, "InstanceNumber", int),
        position=_floats(ds, "ImagePositionPatient", 3),
        orientation=_floats(ds, "ImageOrientationPatient", 6),
        rows=rows, columns=cols,
        image_type=image_type,
        modality=_text(ds, "Modality"),
        slope=_number(ds, "RescaleSlope", float, 1.0),
        intercept=_number(ds, "RescaleIntercept", float, 0.0),
        transfer_syntax=ts,
        samples=_number(ds, "SamplesPerPixel", int, 1),
        frames=_number(ds, "NumberOfFrames", int, 1),
        bits_allocated=_number(ds, "BitsAllocated", int, 16),
        bits_stored=_number(ds, "BitsStored", int, 16),
        signed=_number(ds, "PixelRepresentation", int, 0) == 1,
        pixel_offset=offset if tag == _PIXEL_TAG else None,
        series_description=_text(ds, "SeriesDescription"),
        rescale_type=_text(ds, "RescaleType"),
        has_intercept=_values(ds, "RescaleIntercept") is not None,
        photometric=_text(ds, "PhotometricInterpretation"),
        patient_id=_text(ds, "PatientID"),
    )


def _native_pixels(h: DicomHeader, y0: int = 0, y1: int | None = None) -> np.ndarray | None:
    """Rows ``y0:y1`` of uncompressed little-endian grey pixels, read at the known offset; None
    where the pixel data is not that simple."""
    if (h.transfer_syntax not in _NATIVE_LE or h.pixel_offset is None or h.samples != 1
            or h.frames != 1 or h.bits_allocated not in (8, 16)):
        return None
    y1 = h.rows if y1 is None else y1
    row_bytes = h.columns * (h.bits_allocated // 8)
    n = h.rows * row_bytes
    with open(h.path, "rb") as fp:
        fp.seek(h.pixel_offset)
        head = fp.read(12)
        if len(head) < (8 if h.transfer_syntax == "1.2.840.10008.1.2" else 12):
            raise ImageError(truncated_pixels(0, n), h.path)   # the file ends at the pixel data's tag
        if h.transfer_syntax == "1.2.840.10008.1.2.1" and head[4:6] in (b"OB", b"OW"):
            length, start = int.from_bytes(head[8:12], "little"), 12
        elif h.transfer_syntax == "1.2.840.10008.1.2":
            length, start = int.from_bytes(head[4:8], "little"), 8
        else:
            return None
        if length not in (n, n + (n & 1)):  # odd-length pixel data is padded to even (PS3.5 7.1)
            return None if length == 0xFFFFFFFF else _raise_size(h, length, n)
        fp.seek(h.pixel_offset + start + y0 * row_bytes)
        want = (y1 - y0) * row_bytes
        data = fp.read(want)
        if len(data) == want and y1 < h.rows:  # the rest of the pixel data must be there too
            fp.seek(h.pixel_offset + start + n - 1)
            complete = len(fp.read(1)) == 1
        else:
            complete = len(data) == want
        if not complete:
            present = max(0, os.fstat(fp.fileno()).st_size - h.pixel_offset - start)
            raise ImageError(truncated_pixels(present, n), h.path)
    dtype = {(8, False): "<u1", (8, True): "<i1", (16, False): "<u2", (16, True): "<i2"}[
        (h.bits_allocated, h.signed)]
    arr = np.frombuffer(data, dtype=dtype).reshape(y1 - y0, h.columns)
    bits = h.bits_stored
    if 0 < bits < h.bits_allocated:  # bits above BitsStored are not the pixel's
        if h.signed:
            shift = h.bits_allocated - bits
            arr = (arr << shift) >> shift
        else:
            arr = arr & ((1 << bits) - 1)
    return arr


def truncated_pixels(present: int, declared: int | None) -> str:
    """The message for pixel data the file ends inside."""
    if declared is None:
        return (f"truncated DICOM (pixel data {present:,} bytes, the file ends before the end of its "
                "encapsulated pixel data)")
    return f"truncated DICOM (pixel data {present:,} of {declared:,} bytes)"


_ITEM, _SEQ_END = b"\xfe\xff\x00\xe0", b"\xfe\xff\xdd\xe0"   # (FFFE,E000), (FFFE,E0DD)


def check_encapsulated(h: DicomHeader) -> None:
    """Raise :class:`ImageError` where encapsulated (compressed) pixel data is cut short: its
    items are walked (a few reads: the offset table, one fragment per frame, the delimiter) and
    the bytes present compared with the bytes the items declare."""
    if h.pixel_offset is None:
        return
    with open(h.path, "rb") as fp:
        size = os.fstat(fp.fileno()).st_size
        fp.seek(h.pixel_offset)
        head = fp.read(12)
        if len(head) < 12:
            raise ImageError(truncated_pixels(0, None), h.path)
        if head[4:6] != b"OB" or head[8:12] != b"\xff\xff\xff\xff":
            return
        start = pos = h.pixel_offset + 12
        while True:
            fp.seek(pos)
            item = fp.read(8)
            if len(item) < 8:
                raise ImageError(truncated_pixels(max(0, size - start), None), h.path)
            if item[:4] == _SEQ_END:
                return
            if item[:4] != _ITEM:
                return   # not what the standard says: the decoder names it
            end = pos + 8 + int.from_bytes(item[4:8], "little")
            if end > size:
                raise ImageError(truncated_pixels(size - start, end - start), h.path)
            pos = end


def _raise_size(h: DicomHeader, length: int, n: int):
    raise ImageError(f"pixel data of {length} bytes where {h.rows}x{h.columns} needs {n}", h.path)


def _encapsulated_pixels(h: DicomHeader) -> np.ndarray | None:
    """A compressed grey image decoded from its pixel data at the offset the header pass found,
    by pydicom's decoder for its syntax (no second parse of the header: half the time of
    ``dcmread(...).pixel_array`` for RLE); None where that does not apply or fails (the caller
    decodes through pydicom's dataset, which names what is wrong)."""
    if (h.pixel_offset is None or h.samples != 1 or h.frames != 1 or h.transfer_syntax in _NATIVE_LE
            or not h.photometric.startswith("MONOCHROME")):
        return None
    try:
        from pydicom.pixels import get_decoder

        decoder = get_decoder(h.transfer_syntax)
        with open(h.path, "rb") as fp:
            fp.seek(h.pixel_offset)
            head = fp.read(12)
            if head[4:6] != b"OB" or head[8:12] != b"\xff\xff\xff\xff":   # encapsulated
                return None
            arr, _ = decoder.as_array(
                fp, rows=h.rows, columns=h.columns, samples_per_pixel=1, number_of_frames=1,
                bits_allocated=h.bits_allocated, bits_stored=h.bits_stored,
                pixel_representation=int(h.signed), photometric_interpretation=h.photometric)
    except Exception:  # noqa: BLE001 - decoded again the ordinary way, which names the problem
        return None
    return arr


def stored_pixels(h: DicomHeader) -> np.ndarray:
    """The image's stored values, decoded (compressed syntaxes through pydicom's plugins)."""
    arr = _native_pixels(h)
    if arr is None:
        check_encapsulated(h)
        arr = _encapsulated_pixels(h)
    if arr is not None:
        return arr
    try:
        return np.asarray(_pydicom().dcmread(h.path).pixel_array)
    except Exception as exc:
        raise ImageError(f"cannot decode the DICOM pixel data ({_reason(exc)})", h.path) from None


def to_stored_scale(pixels: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """``HU = pixels * slope + intercept``, then COVID-CTset's HU + 1024 as ``uint16``.

    Parameters
    ----------
    pixels : ndarray (H, W), any integer or float dtype
        Stored values (DICOM) or already HU (``slope=1, intercept=0``). NaN (float volumes)
        becomes 0, i.e. -1024 HU, the value scanners give outside the field of view; the caller
        counts them (:func:`count_nan`).
    """
    offset = intercept + STORED_OFFSET
    if slope == 1 and float(offset).is_integer() and pixels.dtype.kind in "iu":
        if offset == 0 and pixels.dtype == np.uint16:
            return pixels  # COVID-CTset's own encoding: nothing to do
        out = pixels.astype(np.int32) + int(offset)
    else:
        out = np.rint(pixels.astype(np.float64) * slope + offset)
        if pixels.dtype.kind == "f":
            out = np.nan_to_num(out, copy=False, nan=0.0, posinf=65535.0, neginf=0.0)
    return np.clip(out, 0, 65535).astype(np.uint16)


def count_nan(pixels: np.ndarray) -> int:
    """NaN values in a float array (0 for integers)."""
    return int(np.count_nonzero(np.isnan(pixels))) if pixels.dtype.kind == "f" else 0


def _check_grey(h: DicomHeader) -> None:
    if h.samples != 1:
        raise ImageError(f"colour DICOM ({h.samples} samples per pixel), expected a grey CT slice", h.path)
    if h.frames != 1:
        raise ImageError(f"multi-frame DICOM ({h.frames} frames); one image per file expected", h.path)


def _decoded(h: DicomHeader) -> np.ndarray:
    """The stored pixels, shape checked, the modality LUT applied where the image is in HU."""
    arr = stored_pixels(h)
    if arr.shape[:2] != (h.rows, h.columns):
        raise ImageError(f"decoded shape {arr.shape} where the header says {h.rows}x{h.columns}", h.path)
    return to_stored_scale(arr, h.slope, h.intercept) if h.is_hu else arr


def read_ct_slice(h: DicomHeader) -> np.ndarray:
    """One grey slice in the radiologist's view, shape :attr:`DicomHeader.display_shape`: on the
    stored scale (HU + 1024, ``uint16``) where the image is in HU (:attr:`DicomHeader.is_hu`),
    else with its stored values."""
    _check_grey(h)
    return np.ascontiguousarray(to_display(_decoded(h), h.view))


def read_ct_rows(h: DicomHeader, y0: int, y1: int) -> np.ndarray | None:
    """Rows ``y0:y1`` of :func:`read_ct_slice`'s image (the radiologist's view), read alone where
    the pixel data is uncompressed and the view keeps rows as rows; None otherwise (decode the
    slice whole)."""
    transpose, flip_rows, flip_cols = h.view
    if h.samples != 1 or h.frames != 1 or transpose:
        return None
    s0, s1 = (h.rows - y1, h.rows - y0) if flip_rows else (y0, y1)   # the stored rows shown there
    arr = _native_pixels(h, s0, s1)
    if arr is None:
        return None
    arr = to_display(arr, h.view)
    return to_stored_scale(arr, h.slope, h.intercept) if h.is_hu else arr


def read_dicom_image(path: str | os.PathLike) -> np.ndarray:
    """Any DICOM image for :func:`covtool.core.imageio.read_image`, as the selection reads it: in
    the radiologist's view where it is axial; an image in HU (:attr:`DicomHeader.is_hu`) on the
    stored scale HU + 1024 (``uint16``), any other with its stored values (colour as RGB)."""
    h = read_header(path)
    if h is None:
        raise ImageError("a DICOMDIR (an index of a medium), not an image", path)
    if h.frames != 1:
        return stored_pixels(h)
    return np.ascontiguousarray(to_display(_decoded(h), h.view))
