"""Finding CT series on disk: patients/series/slices, patient/slices, or one series folder.

A folder that holds image files directly is a *series*; its slices are ordered naturally
(``IM2`` before ``IM10``). The series' *group* (patient) is:

* the folder above it, when the series lies two or more levels below the INPUT
  (``patients/P1/SR_2/*.tif`` gives group ``P1``, series ``SR_2``);
* the series folder's own name, when it lies directly inside the INPUT
  (``patients/P1/*.tif`` gives group ``P1``, series ``P1``);
* the folder above it, when the INPUT is itself a series (``covtool select patients/P1/SR_2``).

``group`` overrides all three (``covtool select patients/P1 --group P1``).

A folder's DICOM files (found by content, :mod:`covtool.ct.volumes`) make one series per
SeriesInstanceUID, named like the folder (``<folder>_S<SeriesNumber>`` when it holds several,
with one warning naming each), in anatomical order. A manifest's series whose DICOM files have
several SeriesInstanceUIDs is split the same way (``<series>_S<SeriesNumber>``), with a warning. A NIfTI file (``.nii``, ``.nii.gz``) is a series of its own, named by its
stem; its group is the folder holding it, or its stem when it lies directly in INPUT or is INPUT.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from covtool.core.errors import CovtoolError
from covtool.core.imageio import DICOM_SUFFIXES, is_image_file
from covtool.core.naming import natural_key, natural_sorted

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

STDIO = "-"


@dataclass
class Series:
    """One series of slices, in anatomical order where the files tell it (DICOM, NIfTI).

    ``slices`` holds each slice's file (a TIFF/PNG, a DICOM file, or the NIfTI volume itself);
    ``read(i)`` gives slice ``i`` on the stored scale where the files are not plain images.
    """

    group: str
    series: str
    folder: Path | None
    slices: list[Path] = field(default_factory=list)
    rows: list | None = None  # manifest row indices, when read from a manifest
    kind: str = "images"      # "images" (TIFF/PNG files), "dicom" or "nifti"
    positions: list[float] | None = None    # mm along the slice normal, per slice
    slice_index: list[int] | None = None    # NIfTI: the slice's index along the file's own axis
    read: Callable[[int], np.ndarray] | None = None
    left_out: dict[str, int] = field(default_factory=dict)     # images left out, by reason
    bad: list[tuple[Path, str]] = field(default_factory=list)  # files that are not usable slices
    problems: dict[int, str] = field(default_factory=dict)     # slice i: a gap before it
    bad_rows: list | None = None                               # manifest rows of ``bad``
    warnings: list[str] = field(default_factory=list)
    value_scale: str | None = None  # the scale ``read`` gives (covtool.core.scale), where known

    @property
    def key(self) -> tuple[str, str]:
        return self.group, self.series


def _folder_names(root: Path, folder: Path, group: str | None) -> tuple[str, str]:
    depth = len(folder.relative_to(root).parts)
    if group is not None:
        g = group
    elif depth == 0:
        g = root.resolve().parent.name
    elif depth == 1:
        g = folder.name
    else:
        g = folder.parent.name
    return g, folder.name if depth else root.resolve().name


def find_series(root: str | os.PathLike, group: str | None = None) -> list[Series]:
    """All series under ``root`` (a folder, or one NIfTI file), in natural order of their folders.

    Leaf folders without any image are reported as empty series (``slices == []``) so the caller
    can name them; hidden folders and files, and DICOMDIR files, are ignored.
    """
    from covtool.ct.volumes import (
        dicom_series,
        is_nifti_name,
        looks_like_dicom,
        nifti_series,
        nifti_stem,
    )

    root = Path(root)
    if not root.exists():
        raise CovtoolError("no such file or folder", root)
    if not root.is_dir():
        if is_nifti_name(root.name):
            stem = nifti_stem(root)
            return [nifti_series(root, group or stem, stem)]
        raise CovtoolError("expected a folder of patients, a series folder, a NIfTI volume "
                           "(.nii, .nii.gz) or a manifest (.csv)", root)
    found: list[tuple[tuple, Series]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")), key=natural_key)
        folder = Path(dirpath)
        images, dicoms, niftis = [], [], []
        for f in filenames:
            if f.startswith(".") or f.upper() == "DICOMDIR":
                continue
            if is_nifti_name(f):
                niftis.append(folder / f)
            elif is_image_file(f) and Path(f).suffix.lower() not in DICOM_SUFFIXES:
                images.append(folder / f)
            elif looks_like_dicom(folder / f):
                dicoms.append(folder / f)
        rel = natural_key(str(folder.relative_to(root)))
        for n in natural_sorted(niftis, key=lambda p: p.name):
            stem = nifti_stem(n)
            g = group or (stem if folder == root else folder.name)
            found.append(((rel, 1, natural_key(n.name)), nifti_series(n, g, stem)))
        if not images and not dicoms and (dirnames or niftis):
            continue
        g, name = _folder_names(root, folder, group)
        if dicoms:
            for s in dicom_series(dicoms, g, name, folder):
                found.append(((rel, 0, natural_key(s.series)), s))
        if images or not dicoms:
            found.append(((rel, 0, ()), Series(g, name, folder, natural_sorted(images, key=lambda p: p.name))))
    found.sort(key=lambda t: t[0])
    return [s for _, s in found]


def is_manifest_arg(arg: str) -> bool:
    return arg == STDIO or Path(arg).suffix.lower() in {".csv", ".tsv"} and not Path(arg).is_dir()


def _manifest_series(g: str, s: str, items: list[tuple[Path, object, object]]) -> list[Series]:
    """One manifest series: DICOM files in anatomical order (one series per SeriesInstanceUID),
    a NIfTI volume's listed slices, or image files in natural order of their names."""
    from covtool.ct.volumes import (
        is_nifti_name,
        looks_like_dicom,
        nifti_series,
        read_dicom_headers,
        restrict,
        split_series,
    )

    paths = [p for p, _, _ in items]
    folder = paths[0].parent
    if all(is_nifti_name(p.name) for p in paths):
        volumes = {p for p in paths}
        if len(volumes) == 1:
            series = nifti_series(paths[0], g, s)
            if series.bad:
                return [series]
            if all(k is not None for _, _, k in items):
                return [restrict(series, [int(k) for _, _, k in items], [r for _, r, _ in items])]
            series.rows = [items[0][1]] * len(series.slices)
            return [series]
    elif all(p.suffix.lower() not in {".tif", ".tiff", ".png"} and p.is_file() and looks_like_dicom(p)
             for p in paths):
        headers, bad = read_dicom_headers(paths)
        found = split_series(headers, bad, g, s, folder, f"manifest series {g}/{s}", chosen=True)
        by_path = {p: r for p, r, _ in items}
        for series in found:
            series.rows = [by_path[p] for p in series.slices]
            series.bad_rows = [by_path[p] for p, _ in series.bad]
        return found
    items = sorted(items, key=lambda t: natural_key(t[0].name))
    return [Series(g, s, folder, [p for p, _, _ in items], [r for _, r, _ in items])]


def series_from_manifest(df: pd.DataFrame) -> list[Series]:
    """Group a slice manifest into series: DICOM rows in anatomical order, NIfTI rows (``path``
    the volume, optional ``slice_index``) as their volume's slices, others in natural order of
    their file names."""
    has_series = "series" in df.columns
    has_index = "slice_index" in df.columns
    groups: dict[tuple[str, str], list] = {}
    for n, (idx, g, p) in enumerate(zip(df.index, df["group"], df["path"])):
        s = df["series"].iat[n] if has_series else g
        k = df["slice_index"].iat[n] if has_index else ""
        k = None if k in ("", None) or (isinstance(k, float) and k != k) else k
        groups.setdefault((str(g), str(s) if s != "" else str(g)), []).append((Path(p), idx, k))
    return [series for (g, s), items in groups.items() for series in _manifest_series(g, s, items)]


def collect_series(inputs: list[str], group: str | None) -> tuple[list[Series], pd.DataFrame | None]:
    """The series of every INPUT (folder, NIfTI file or manifest) and the manifests' rows."""
    series: list[Series] = []
    frames = []
    for arg in inputs:
        if is_manifest_arg(arg):
            from covtool.core.manifest import read_manifest

            df = read_manifest(arg, required=["path", "group"])
            offset = sum(len(f) for f in frames)
            df = df.assign(_src=range(offset, offset + len(df)))
            frames.append(df)
            for s in series_from_manifest(df):
                src = df["_src"]
                s.rows = [int(src.at[i]) for i in s.rows] if s.rows is not None else None
                if s.bad_rows is not None:
                    s.bad_rows = [int(src.at[i]) if i is not None else None for i in s.bad_rows]
                series.append(s)
        else:
            series.extend(find_series(arg, group))
    source = None
    if frames:
        import pandas as pd

        source = pd.concat(frames, ignore_index=True)
    return series, source
