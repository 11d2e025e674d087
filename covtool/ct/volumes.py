"""CT volumes as radiology stores them: DICOM series and NIfTI files, as series of axial slices.

Every slice comes out as a radiologist sees an axial image (the patient's right on the image's
left, anterior at the top: rows anterior → posterior, columns right → left, as an axial DICOM
image with orientation ``1,0,0,0,1,0``), on COVID-CTset's stored scale (HU + 1024, ``uint16``:
:mod:`covtool.core.dicom`), in anatomical order (inferior → superior), with its position in mm
along the slice normal signed toward the patient's head (for an untilted axial slice: its
ImagePositionPatient z, the same number whether the patient lay head- or feet-first, supine or
prone). The selection region is defined in that frame, so it lands on the lungs whatever the
file's own axes.

DICOM: files are found by their content (``DICM`` at byte 128, or a ``.dcm``/``.dicom`` name),
grouped by SeriesInstanceUID, ordered by ImagePositionPatient projected on that normal,
InstanceNumber where positions are missing; each image is turned from its stored orientation
into the radiologist's view (:func:`covtool.core.dicom.display_view`). Localizers (ImageType
``LOCALIZER``), images that are not axial and images in another orientation than the series'
are left out and counted. Headers are read first without pixels; pixels are decoded one slice
at a time.

Gaps in the positions: in a folder's series (all the files there are) a gap is an error, the
series is incomplete; in a manifest's series (slices someone chose: ``select --only-selected``
output, an expert's list) it is one warning line, for DICOM and NIfTI alike.

NIfTI (``.nii``, ``.nii.gz``) through nibabel: the voxel axes are matched to the patient's
(``io_orientation``, as ``as_closest_canonical`` does, without loading the volume) and each axial
slice is read on its own from the file and turned into the radiologist's view. Values are taken as
HU (``scl_slope``/``scl_inter`` applied).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from covtool.core.dicom import (
    NO_PIXELS,
    DicomHeader,
    count_nan,
    is_axial,
    read_ct_rows,
    read_ct_slice,
    read_header,
    slice_normal,
    to_stored_scale,
)
from covtool.core.errors import ImageError, describe
from covtool.core.naming import natural_key
from covtool.core.scale import STORED
from covtool.ct.seriesdata import Series

NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: a step between neighbouring slices larger than this times the series' median is a gap
GAP_FACTOR = 1.5
_POSITION_DECIMALS = 3  # mm; the same volume as DICOM and as NIfTI gives the same positions


def is_nifti_name(name: str) -> bool:
    n = name.lower()
    return n.endswith(NIFTI_SUFFIXES)


def nifti_stem(path: Path) -> str:
    n = path.name
    return n[: -len(".nii.gz")] if n.lower().endswith(".nii.gz") else n[: -len(".nii")]


def looks_like_dicom(path: Path) -> bool:
    """DICOM by content: the ``DICM`` magic after the 128-byte preamble, or a DICOM name."""
    if path.suffix.lower() in (".dcm", ".dicom"):
        return True
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# DICOM


class DicomReader:
    """Slice ``i`` of an ordered DICOM series on the stored scale, decoded when asked."""

    def __init__(self, headers: list[DicomHeader]):
        self.headers = headers

    def __call__(self, i: int) -> np.ndarray:
        return read_ct_slice(self.headers[i])

    def rows(self, i: int, rows_of) -> tuple[tuple[int, int], np.ndarray] | None:
        """``((H, W), rows)`` of slice ``i`` in the radiologist's view: only rows
        ``rows_of((H, W))`` (the stored rows shown there, flipped as the view says), where they
        can be read alone (uncompressed, not transposed); None otherwise."""
        h = self.headers[i]
        shape = h.display_shape
        y0, y1 = rows_of(shape)
        got = read_ct_rows(h, y0, y1)
        return None if got is None else (shape, got)


def _orientation_key(o) -> tuple:
    return tuple(round(v, 3) for v in o)


def order_dicom(headers: list[DicomHeader], group: str, name: str, folder: Path | None,
                chosen: bool = False, unread: list[int] | None = None) -> Series:
    """One DICOM series from its images' headers: left-out images counted, the rest in
    anatomical order, with positions, size problems and gaps noted for the caller (gaps are
    errors, or with ``chosen`` (a manifest's slices) one warning). ``unread[0]`` counts the
    folder's files whose header could not be read (their position unknown): a gap they can fill
    is theirs, not an error of its own (:func:`note_gaps`)."""
    series = Series(group, name, folder, kind="dicom")
    ids = Counter(h.patient_id for h in headers if h.patient_id)
    series.patient_id = ids.most_common(1)[0][0] if ids else None
    kept: list[DicomHeader] = []
    for h in headers:
        if h.is_localizer:
            series.left_out["localizer"] = series.left_out.get("localizer", 0) + 1
        elif h.orientation is not None and not is_axial(h.orientation):
            series.left_out["not axial"] = series.left_out.get("not axial", 0) + 1
        else:
            kept.append(h)
    oriented = [h for h in kept if h.orientation is not None]
    if oriented:
        ref = Counter(_orientation_key(h.orientation) for h in oriented).most_common(1)[0][0]
        other = [h for h in oriented if _orientation_key(h.orientation) != ref]
        if other:
            series.left_out["other orientation"] = len(other)
            kept = [h for h in kept if h.orientation is None or _orientation_key(h.orientation) == ref]
    if kept:  # within the series' axial images, one size: another is an error, not a localizer
        size = Counter((h.rows, h.columns) for h in kept).most_common(1)[0][0]
        for h in kept:
            if (h.rows, h.columns) != size:
                series.bad.append((h.path, f"image size {h.columns}x{h.rows} differs from the series' "
                                           f"{size[1]}x{size[0]} (mixed sizes in one series)"))
        kept = [h for h in kept if (h.rows, h.columns) == size]
    if kept and all(h.position is not None and h.orientation is not None for h in kept):
        normal = slice_normal(kept[0].orientation)
        pos = {id(h): round(float(np.dot(h.position, normal)), _POSITION_DECIMALS) for h in kept}
        kept.sort(key=lambda h: (pos[id(h)], h.instance if h.instance is not None else 0,
                                 natural_key(h.path.name)))
        ordered: list[DicomHeader] = []
        for h in kept:
            if ordered and abs(pos[id(h)] - pos[id(ordered[-1])]) < 1e-3:
                series.bad.append((h.path, f"same slice position ({pos[id(h)]:g} mm) as "
                                           f"{ordered[-1].path.name} (a duplicate image?)"))
                continue
            ordered.append(h)
        kept = ordered
        series.positions = [pos[id(h)] for h in kept]
        note_gaps(series, [h.path.name for h in kept], chosen, unread)
    else:
        kept.sort(key=lambda h: (h.instance is None, h.instance or 0, natural_key(h.path.name)))
        if kept:
            how = "InstanceNumber" if all(h.instance is not None for h in kept) else "file name"
            series.warnings.append(f"{kept[0].path.parent}: no ImagePositionPatient/Orientation in "
                                   f"some images; slices ordered by {how}")
    _note_scale(series, kept)
    series.slices = [h.path for h in kept]
    series.read = DicomReader(kept)
    return series


def _note_scale(series: Series, kept: list[DicomHeader]) -> None:
    """The series' value scale, and a warning where its images are not plainly CT."""
    if not kept:
        return
    modalities = ", ".join(sorted({h.modality.upper() for h in kept})) or "none"
    where = kept[0].path.parent
    if all(h.is_hu for h in kept):
        series.value_scale = STORED
        if modalities != "CT":
            series.warnings.append(f"{where}: modality {modalities}, read as CT in HU through its "
                                   "RescaleSlope/RescaleIntercept (an image in HU: see docs/select.md)")
    else:
        series.warnings.append(f"{where}: modality {modalities}, not an image in HU: its stored values "
                               "are used as they are, so the dark level may not apply")


def note_gaps(series: Series, names: list[str], chosen: bool, unread: list[int] | None = None) -> None:
    """Steps between neighbouring positions larger than GAP_FACTOR times the series' median:
    ``series.problems`` (errors), or with ``chosen`` one line in ``series.warnings``.
    ``names[i]`` names slice i in the messages. A gap of ``m`` missing slices is no error where
    ``unread[0] >= m`` files of the folder could not be read (each is an error of its own, at a
    position unknown; ``unread[0]`` is decreased by the slices it explains)."""
    pos = np.asarray(series.positions)
    if len(pos) < 3:
        return
    steps = np.diff(pos)
    median = float(np.median(steps))
    gaps = np.flatnonzero(steps > GAP_FACTOR * median)
    if not len(gaps):
        return
    if chosen:
        i = int(gaps[0])
        series.warnings.append(
            f"{series.group}/{series.series}: {len(gaps)} gap{'s' if len(gaps) > 1 else ''} in the "
            f"listed slices' positions (the first {steps[i]:.2f} mm after {names[i]}, spacing "
            f"{median:.2f} mm); the manifest's slices are used as listed")
        return
    for i in gaps:
        missing = max(1, int(round(steps[i] / median)) - 1) if median > 0 else 1
        if unread is not None and unread[0] >= missing:
            unread[0] -= missing   # where the unreadable files' slices lie: they are the errors
            continue
        series.problems[int(i) + 1] = (
            f"gap in slice positions: {steps[i]:.2f} mm after {names[i]} where the series' "
            f"spacing is {median:.2f} mm (a missing slice?)")


def read_dicom_headers(files: list[Path]) -> tuple[list[DicomHeader], list[tuple[Path, str]]]:
    """The headers of ``files`` (DICOMDIRs dropped) and the files that cannot be read, with why."""
    headers: list[DicomHeader] = []
    bad: list[tuple[Path, str]] = []
    for f in sorted(files, key=lambda p: natural_key(p.name)):
        try:
            h = read_header(f)
        except ImageError as exc:
            bad.append((f, exc.message))
            continue
        if h is not None:
            headers.append(h)
    return headers, bad


def dicom_series(files: list[Path], group: str, name: str, folder: Path) -> list[Series]:
    """The DICOM series among ``files`` (one folder's), one per SeriesInstanceUID.

    The series is named ``name`` when the folder holds one, else ``name_S<SeriesNumber>``, and
    one warning (on the first series) names each series found. Files that cannot be read, or hold
    no pixel data, are attached to the first series as bad files (or make a series of their own
    when no series could be read).
    """
    headers, bad = read_dicom_headers(files)
    return split_series(headers, bad, group, name, folder, str(folder))


def split_series(headers: list[DicomHeader], bad: list[tuple[Path, str]], group: str, name: str,
                 folder: Path, where: str, chosen: bool = False) -> list[Series]:
    """:func:`dicom_series` on headers already read; ``where`` names their source in the
    warning (a folder, or a manifest's series)."""
    unread = [sum(1 for _, why in bad if why != NO_PIXELS)]   # slices at an unknown position
    by_uid: dict[str, list[DicomHeader]] = {}
    for h in headers:
        by_uid.setdefault(h.series_uid, []).append(h)
    uids = sorted(by_uid, key=lambda u: (by_uid[u][0].series_number is None,
                                         by_uid[u][0].series_number or 0, u))
    out: list[Series] = []
    used: set[str] = set()
    for k, uid in enumerate(uids, start=1):
        sname = name
        if len(uids) > 1:
            num = by_uid[uid][0].series_number
            sname = f"{name}_S{num if num is not None else k}"
            if sname in used:
                sname = f"{name}_S{num}_{k}"
        used.add(sname)
        out.append(order_dicom(by_uid[uid], group, sname, folder, chosen, unread))
    if len(out) > 1:
        found = "; ".join(_series_label(by_uid[u], s) for u, s in zip(uids, out))
        out[0].warnings.insert(0, f"{where}: {len(out)} DICOM series, each selected on its own and, "
                                  f"in patient-diagnose, all diagnosed as patient {group}: {found}")
    if bad:
        if not out:
            out.append(Series(group, name, folder, kind="dicom"))
        out[0].bad.extend(bad)
    return out


def _series_label(headers: list[DicomHeader], series: Series) -> str:
    h = headers[0]
    num = h.series_number if h.series_number is not None else "?"
    desc = f" '{h.series_description}'" if h.series_description else ""
    return f"{series.series} (SeriesNumber {num}{desc}, {len(series.slices)} slices)"


# ---------------------------------------------------------------------------------------------
# NIfTI


class NiftiReader:
    """Slice ``i`` (inferior → superior) of a NIfTI volume in the radiologist's view, HU + 1024.

    A volume whose axial slices are contiguous in the file and stored inferior first is read one
    slice at a time (the file kept open, so a ``.nii.gz`` is decompressed once, front to back);
    any other is read whole, unscaled, on the first slice asked for.
    """

    def __init__(self, path: Path, plan: dict):
        self.path = path
        self.plan = plan
        self._img = None
        self._whole = None
        self.min_hu = np.inf
        self.nan = 0           # NaN voxels met (float volumes), read as 0 = -1024 HU
        self.nan_slices = 0

    def _open(self):
        import nibabel as nib

        if self._img is None:
            self._img = nib.load(str(self.path), keep_file_open=True)
        return self._img

    def __call__(self, i: int) -> np.ndarray:
        p = self.plan
        v = self.plan["voxels"][i]
        try:
            img = self._open()
            proxy = img.dataobj
            slicer = [slice(None)] * p["ndim"]
            slicer[p["ax_s"]] = v
            for extra in range(3, p["ndim"]):
                slicer[extra] = 0
            if p["stream"]:
                slab = np.asarray(proxy[tuple(slicer)])
            else:
                if self._whole is None:
                    self._whole = np.asarray(proxy.get_unscaled() if hasattr(proxy, "get_unscaled") else proxy)
                slab = self._whole[tuple(slicer)]   # a view (np.take would copy through the volume)
                slab = slab * p["slope"] + p["inter"] if (p["slope"], p["inter"]) != (1.0, 0.0) else slab
        except (OSError, EOFError, ValueError) as exc:
            raise ImageError(f"unreadable NIfTI slice {v} ({describe(exc)})", self.path) from None
        # slab axes: the two in-plane voxel axes in file order -> (anterior/posterior, right/left)
        if p["ax_a"] > p["ax_r"]:
            slab = slab.T
        if p["dir_a"] > 0:
            slab = slab[::-1]
        if p["dir_r"] > 0:
            slab = slab[:, ::-1]
        nan = count_nan(slab)
        if nan:
            self.nan += nan
            self.nan_slices += 1
            finite = slab[np.isfinite(slab)]
            if finite.size:
                self.min_hu = min(self.min_hu, float(finite.min()))
        elif slab.size:
            self.min_hu = min(self.min_hu, float(np.min(slab)))
        return to_stored_scale(np.ascontiguousarray(slab), 1.0, 0.0)

    def finish(self) -> list[str]:
        """Close the file; warnings where the values do not look like HU, and NaN voxels."""
        self._img = None
        self._whole = None
        out = []
        if self.nan:
            out.append(f"{self.path}: {self.nan} NaN voxel{'s' if self.nan > 1 else ''} in "
                       f"{self.nan_slices} slice{'s' if self.nan_slices > 1 else ''}, read as 0 on the "
                       "stored scale (-1024 HU, as outside a scanner's field of view): dark pixels "
                       "where they fall in the region")
        if np.isfinite(self.min_hu) and self.min_hu >= 0:
            out.append(f"{self.path}: no value below 0, so the volume may not hold HU (covtool takes "
                       "NIfTI values as HU; air is -1000)")
        return out


def nifti_plan(img, path: Path) -> dict:
    """How to read axial slices of ``img``: the voxel axes of the patient's R, A and S axes and
    their directions, the voxel index of each slice (inferior first), and positions in mm."""
    from nibabel.orientations import io_orientation

    shape = tuple(int(s) for s in img.shape)
    if len(shape) < 3 or any(s != 1 for s in shape[3:]):
        raise ImageError(f"not a 3-D volume (shape {'x'.join(map(str, shape))}); covtool reads one "
                         "3-D CT volume per NIfTI file", path)
    aff = np.asarray(img.affine, float)
    ornt = io_orientation(aff)
    axes = {int(w): (ax, int(d)) for ax, (w, d) in enumerate(ornt)}
    if set(axes) != {0, 1, 2}:
        raise ImageError("the affine does not orient the volume (degenerate axes)", path)
    (ax_r, dir_r), (ax_a, dir_a), (ax_s, dir_s) = axes[0], axes[1], axes[2]
    n_r, n_a, n_s = shape[ax_r], shape[ax_a], shape[ax_s]
    voxels = list(range(n_s)) if dir_s > 0 else list(range(n_s - 1, -1, -1))

    def world_lps(vox) -> np.ndarray:
        w = aff[:3, :3] @ np.asarray(vox, float) + aff[:3, 3]
        return w * np.array([-1.0, -1.0, 1.0])

    def vox(r, c, v):  # display row r, column c, voxel index v along the slice axis
        out = [0, 0, 0]
        out[ax_r] = (n_r - 1 - c) if dir_r > 0 else c
        out[ax_a] = (n_a - 1 - r) if dir_a > 0 else r
        out[ax_s] = v
        return out

    origin = world_lps(vox(0, 0, voxels[0]))
    row_dir = world_lps(vox(0, 1, voxels[0])) - origin
    col_dir = world_lps(vox(1, 0, voxels[0])) - origin
    normal = np.cross(row_dir, col_dir)
    normal = normal / (np.linalg.norm(normal) or 1.0)
    positions = [round(float(np.dot(world_lps(vox(0, 0, v)), normal)), _POSITION_DECIMALS) for v in voxels]
    slope, inter = getattr(img.dataobj, "slope", 1.0), getattr(img.dataobj, "inter", 0.0)
    gz = path.name.lower().endswith(".gz")
    return {"ndim": len(shape), "ax_r": ax_r, "dir_r": dir_r, "ax_a": ax_a, "dir_a": dir_a,
            "ax_s": ax_s, "dir_s": dir_s, "voxels": voxels, "positions": positions,
            "slope": float(slope) if np.isfinite(slope) else 1.0,
            "inter": float(inter) if np.isfinite(inter) else 0.0,
            "stream": ax_s == 2 and (dir_s > 0 or not gz)}


def nifti_series(path: str | os.PathLike, group: str, name: str) -> Series:
    """One NIfTI volume as a series of axial slices (``Series.bad`` holds why it cannot be)."""
    import nibabel as nib

    path = Path(path)
    series = Series(group, name, path.parent, kind="nifti")
    try:
        try:
            img = nib.load(str(path))
        except Exception as exc:  # nibabel raises many types for damaged files
            raise ImageError(f"unreadable NIfTI ({describe(exc)})", path) from None
        plan = nifti_plan(img, path)
    except ImageError as exc:
        series.bad.append((path, exc.message))
        return series
    series.slices = [path] * len(plan["voxels"])
    series.value_scale = STORED
    series.positions = plan["positions"]
    series.slice_index = list(plan["voxels"])
    series.read = NiftiReader(path, plan)
    return series


def restrict(series: Series, keep_index: list[int], rows: list) -> Series:
    """The slices of a NIfTI series whose file index is in ``keep_index`` (manifest rows)."""
    where = {v: i for i, v in enumerate(series.slice_index or [])}
    missing = [k for k in keep_index if k not in where]
    if missing:
        series.bad.append((series.slices[0] if series.slices else Path(series.folder or ""),
                           f"slice_index {missing[0]} is not a slice of the volume"))
    pairs = sorted(((where[k], r) for k, r in zip(keep_index, rows) if k in where), key=lambda t: t[0])
    idx = [i for i, _ in pairs]
    reader = series.read
    if reader is not None:
        reader.plan = {**reader.plan, "voxels": [reader.plan["voxels"][i] for i in idx]}
    series.slices = [series.slices[i] for i in idx]
    series.positions = [series.positions[i] for i in idx]
    series.slice_index = [series.slice_index[i] for i in idx]
    series.rows = [r for _, r in pairs]
    note_gaps(series, [f"slice_index {k}" for k in series.slice_index], chosen=True)
    return series
