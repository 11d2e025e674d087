"""CT volumes written as scanners and research pipelines store them: DICOM series and NIfTI.

For the tests and the benchmark. A volume is given as the radiologist sees it: ``(K, H, W)``
slices, each with rows anterior → posterior and columns patient's right → left (an axial DICOM
image with orientation ``1,0,0,0,1,0``), slice k at ``z0 + k * spacing`` mm (inferior → superior).
Values are Hounsfield units; the writers store them with the slope and intercept asked for, and
the DICOM writer in any axial orientation asked for (feet-first ``-1,0,0,0,1,0``, prone
``-1,0,0,0,-1,0``, ...): the stored pixels and ImagePositionPatient are the same anatomy seen from
there.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
#: JPEG Lossless, first-order prediction (COVID-CT-MD's syntax): pydicom has no encoder for it
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"


def _uid(prefix: str, *parts: int) -> str:
    return prefix + ".".join(str(p) for p in parts)


def dicom_slice(hu: np.ndarray, *, position: Sequence[float], orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
                spacing: tuple[float, float] = (0.75, 0.75), instance: int = 1, series_uid: str = "1.2.826.0.1.3680043.9.7.1",
                series_number: int = 1, slope: float = 1.0, intercept: float = -1024.0, signed: bool = False,
                image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"), transfer_syntax: str | None = None,
                pixel_data: bool = True):
    """One CT image as a pydicom Dataset: stored = round((HU - intercept) / slope)."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    stored = np.rint((np.asarray(hu, np.float64) - intercept) / slope)
    dtype = np.int16 if signed else np.uint16
    info = np.iinfo(dtype)
    stored = np.clip(stored, info.min, info.max).astype(dtype)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = _uid(series_uid + ".", instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.ImageType = list(image_type)
    ds.PatientID = "SYNTH"
    ds.StudyInstanceUID = series_uid.rsplit(".", 1)[0] + ".0"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.SliceLocation = float(position[2])
    ds.PixelSpacing = [float(spacing[0]), float(spacing[1])]
    ds.SliceThickness = 2.0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if signed else 0
    ds.RescaleSlope = f"{slope:g}"
    ds.RescaleIntercept = f"{intercept:g}"
    if pixel_data:
        ds.PixelData = stored.tobytes()
        if transfer_syntax is not None and transfer_syntax != ExplicitVRLittleEndian:
            _compress(ds, pydicom.uid.UID(transfer_syntax))
    return ds


def jpeg_lossless(img: np.ndarray, precision: int = 16) -> bytes:
    """A grey image as a JPEG Lossless bitstream, process 14, first-order prediction (selection
    value 1, point transform 0), one Huffman table of 5-bit codes (code k for category k).

    img : ndarray (H, W), unsigned integers below ``2 ** precision`` (signed pixels: their
    two's-complement bit pattern, ``img.view(np.uint16)``, as DICOM stores them).
    """
    h, w = img.shape
    x = img.astype(np.int64)
    pred = np.empty_like(x)
    pred[0, 0] = 1 << (precision - 1)
    pred[0, 1:] = x[0, :-1]      # first row: the sample to the left
    pred[1:, 0] = x[:-1, 0]      # first column: the sample above
    pred[1:, 1:] = x[1:, :-1]    # elsewhere: predictor 1, the left sample
    diff = (x - pred) & 0xFFFF   # differences modulo 2^16 (ITU T.81 H.1.2.1)
    diff = np.where(diff >= 0x8000, diff - 0x10000, diff)
    out = bytearray()
    acc, n_acc = 0, 0
    for d in diff.ravel().tolist():
        ssss = 16 if d == -32768 else abs(d).bit_length()
        acc, n_acc = (acc << 5) | ssss, n_acc + 5
        if 0 < ssss < 16:
            acc, n_acc = (acc << ssss) | (d if d > 0 else d + (1 << ssss) - 1), n_acc + ssss
        while n_acc >= 8:
            n_acc -= 8
            byte = (acc >> n_acc) & 0xFF
            out += b"\xff\x00" if byte == 0xFF else bytes([byte])   # byte stuffing
        acc &= (1 << n_acc) - 1
    if n_acc:  # pad with 1-bits
        byte = ((acc << (8 - n_acc)) | ((1 << (8 - n_acc)) - 1)) & 0xFF
        out += b"\xff\x00" if byte == 0xFF else bytes([byte])

    def segment(marker: int, body: bytes) -> bytes:
        return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body

    dht = bytes([0x00, 0, 0, 0, 0, 17] + [0] * 11) + bytes(range(17))
    sof3 = bytes([precision]) + h.to_bytes(2, "big") + w.to_bytes(2, "big") + bytes([1, 1, 0x11, 0])
    sos = bytes([1, 1, 0x00, 1, 0, 0])
    return (b"\xff\xd8" + segment(0xC4, dht) + segment(0xC3, sof3) + segment(0xDA, sos) + bytes(out)
            + b"\xff\xd9")


def _compress(ds, syntax) -> None:
    """Compress with pylibjpeg's encoder where it has one (RLE: ten times pydicom's own speed);
    JPEG Lossless SV1 with :func:`jpeg_lossless`."""
    if syntax == JPEG_LOSSLESS_SV1:
        from pydicom.encaps import encapsulate

        stored = np.frombuffer(ds.PixelData, np.uint16).reshape(ds.Rows, ds.Columns)
        ds.PixelData = encapsulate([jpeg_lossless(stored, int(ds.BitsStored))])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = syntax
        return
    try:
        ds.compress(syntax, encoding_plugin="pylibjpeg")
    except (RuntimeError, ValueError, NotImplementedError):
        ds.compress(syntax)


def write_dicom_series(folder: str | os.PathLike, volume_hu: np.ndarray, *, z0: float = -200.0,
                       spacing_mm: float = 2.0, names: Iterable[str] | None = None,
                       descending: bool = False, orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
                       **kwargs) -> list[Path]:
    """Write a (K, H, W) HU volume (the radiologist's view) as one axial DICOM series stored in
    ``orientation``, one file per slice.

    ``names`` gives the file names (default ``IM<k>.dcm``), in slice order; ``descending``
    numbers the instances from the top (superior) slice down, as many scanners do.
    Returns the paths in slice order (inferior → superior).
    """
    from covtool.core.dicom import display_view, from_display

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    k_n, h, w = volume_hu.shape
    names = list(names) if names is not None else [f"IM{k + 1}.dcm" for k in range(k_n)]
    row_mm, col_mm = kwargs.pop("spacing", (0.75, 0.75))
    view = display_view(orientation)
    # the stored image's first pixel is the displayed pixel the view puts it on
    r0, c0 = (h - 1 if view[1] else 0), (w - 1 if view[2] else 0)
    spacing = (col_mm, row_mm) if view[0] else (row_mm, col_mm)
    paths = []
    for k in range(k_n):
        instance = k_n - k if descending else k + 1
        pos = (-(w - 1) * col_mm / 2 + c0 * col_mm, -(h - 1) * row_mm / 2 + r0 * row_mm, z0 + k * spacing_mm)
        ds = dicom_slice(from_display(volume_hu[k], view), position=pos, instance=instance,
                         orientation=orientation, spacing=spacing, **kwargs)
        p = folder / names[k]
        ds.save_as(p, enforce_file_format=True)
        paths.append(p)
    return paths


def write_nifti(path: str | os.PathLike, volume_hu: np.ndarray, *, z0: float = -200.0,
                spacing_mm: float = 2.0, pixel_mm: float = 0.75, layout: str = "LPS",
                dtype=np.int16, slope: float = 1.0, inter: float = 0.0) -> Path:
    """Write the same (K, H, W) HU volume as a NIfTI file whose world frame matches
    :func:`write_dicom_series`, with the voxel axes stored in ``layout``:

    * ``"LPS"``: the array is ``[col, row, k]`` as dcm2niix-style converters keep DICOM's order;
    * ``"RAS"``: already canonical (``i`` toward the right, ``j`` anterior, ``k`` superior);
    * ``"SLP"``: axes permuted (``k`` first), to exercise the reorientation.
    """
    import nibabel as nib

    k_n, h, w = volume_hu.shape
    x0, y0 = -(w - 1) * pixel_mm / 2, -(h - 1) * pixel_mm / 2   # LPS of the top-left voxel
    lps = np.transpose(volume_hu, (2, 1, 0))                   # [col, row, k]: +x L, +y P, +z S
    # voxel (c, r, k) -> LPS (x0 + c p, y0 + r p, z0 + k s); RAS negates x and y
    aff = np.array([[-pixel_mm, 0, 0, -x0], [0, -pixel_mm, 0, -y0],
                    [0, 0, spacing_mm, z0], [0, 0, 0, 1]], float)
    if layout == "LPS":
        data = lps
    elif layout == "RAS":
        data = lps[::-1, ::-1, :]
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        flip[0, 3], flip[1, 3] = w - 1, h - 1
        aff = aff @ flip
    elif layout == "SLP":
        data = np.transpose(lps, (2, 0, 1))[::-1]                  # [k reversed, col, row]
        perm = np.zeros((4, 4))
        perm[0, 1] = perm[1, 2] = 1
        perm[2, 0] = -1
        perm[2, 3] = k_n - 1
        perm[3, 3] = 1
        aff = aff @ perm
    else:
        raise ValueError(f"unknown layout {layout!r}")
    stored = np.rint((np.asarray(data, np.float64) - inter) / slope).astype(dtype)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(np.ascontiguousarray(stored), aff)
    img.header.set_slope_inter(slope, inter)
    img.header.set_xyzt_units("mm")
    nib.save(img, str(path))
    return Path(path)


def chest_phantom(k_n: int = 12, size: int = 64, seed: int = 0) -> np.ndarray:
    """A small (K, size, size) HU chest: a body ellipse, two lungs that open towards the middle
    slices, a heart on the patient's left (image right) and a spine at the back, so a wrong flip
    of either axis or a wrong slice order changes the slices."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    vol = np.full((k_n, size, size), -1000.0)
    for k in range(k_n):
        open_ = np.sin(np.pi * (k + 0.5) / k_n) ** 2
        body = ((xx - 0.5) / 0.45) ** 2 + ((yy - 0.52) / 0.36) ** 2 < 1
        sl = np.where(body, 40.0, -1000.0)
        for cx in (0.32, 0.68):
            lung = ((xx - cx) / (0.14 * open_ + 1e-3)) ** 2 + ((yy - 0.5) / (0.22 * open_ + 1e-3)) ** 2 < 1
            sl[lung] = -850.0
        heart = ((xx - 0.62) / 0.1) ** 2 + ((yy - 0.45) / 0.09) ** 2 < 1   # patient's left, anterior
        sl[heart] = 45.0
        spine = ((xx - 0.5) / 0.05) ** 2 + ((yy - 0.8) / 0.05) ** 2 < 1   # posterior
        sl[spine] = 900.0
        sl[: int(size * 0.15), : int(size * 0.2)] = -1000.0 + 3 * k      # a corner marker
        vol[k] = sl + rng.normal(0, 5, sl.shape)
    return np.rint(vol)
