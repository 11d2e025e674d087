"""Finding CT series on disk: patients/series/slices, patient/slices, or one series folder.

A folder that holds image files directly is a *series*; its slices are ordered naturally
(``IM2`` before ``IM10``). The series' *group* (patient) is:

* the folder above it, when the series lies two or more levels below the INPUT
  (``patients/P1/SR_2/*.tif`` gives group ``P1``, series ``SR_2``);
* the series folder's own name, when it lies directly inside the INPUT
  (``patients/P1/*.tif`` gives group ``P1``, series ``P1``);
* the folder above it, when the INPUT is itself a series (``covtool select patients/P1/SR_2``).

``group`` overrides all three (``covtool select patients/P1 --group P1``).

DICOM series and NIfTI volumes follow their own patient rules (:func:`_dicom_patients`: the
PatientID keeps patients apart; NIfTI: one patient per volume), and two patients never share a
group name (:func:`_distinct_groups`); docs/select.md, "Patients". Symbolic links to folders are
followed, each real folder once.

A folder's DICOM files (found by content, :mod:`covtool.ct.volumes`) make one series per
SeriesInstanceUID, named like the folder (``<folder>_S<SeriesNumber>`` when it holds several,
with one warning naming each), in anatomical order. A manifest's series whose DICOM files have
several SeriesInstanceUIDs is split the same way (``<series>_S<SeriesNumber>``), with a warning.
A NIfTI file (``.nii``, ``.nii.gz``) is a series of its own, named by its stem (its file name
where two share a stem); its group is its stem, or the folder holding it where that folder lies
below INPUT and holds this volume alone.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from covtool.core.errors import CovtoolError
from covtool.core.imageio import DICOM_SUFFIXES, is_image_file
from covtool.core.naming import natural_key, natural_sorted, safe_id
from covtool.ct.seriesdata import Series

if TYPE_CHECKING:
    import pandas as pd

    from covtool.core.manifest import Row, Table


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


def _rule_folder(root: Path, folder: Path) -> Path:
    """The folder the folder rule takes for a series folder's patient (its group)."""
    depth = len(folder.relative_to(root).parts)
    return root.resolve().parent if depth == 0 else folder if depth == 1 else folder.parent


def _name_of(root: Path, folder: Path) -> str:
    return (root.resolve() if folder == root else folder).name


def _walk(root: Path):
    """``os.walk`` following symbolic links to folders (a patient folder linked into INPUT), each
    real folder visited once (a link back to a folder already seen is skipped: no loops)."""
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")
                              and os.path.realpath(os.path.join(dirpath, d)) not in seen), key=natural_key)
        yield dirpath, dirnames, filenames


def _listing(root: Path, group: str | None) -> list[Series]:
    """:func:`find_series` for one INPUT folder, before patients' names are made distinct."""
    from covtool.ct.volumes import dicom_series, is_nifti_name, looks_like_dicom

    found: list[tuple[tuple, Series]] = []
    for dirpath, dirnames, filenames in _walk(root):
        folder = Path(dirpath)
        images, dicoms, niftis = [], [], []
        for f in filenames:
            if f.startswith(".") or f.upper() == "DICOMDIR":
                continue
            if is_nifti_name(f):
                niftis.append(folder / f)
            elif is_image_file(f) and Path(f).suffix.lower() not in DICOM_SUFFIXES:
                images.append(folder / f)
            elif (folder / f).is_file() and looks_like_dicom(folder / f):
                dicoms.append(folder / f)
        rel = natural_key(str(folder.relative_to(root)))
        for n, series in _nifti_folder(root, folder, niftis, group):
            found.append(((rel, 1, natural_key(n.name)), series))
        if not images and not dicoms and (dirnames or niftis):
            continue
        g, name = _folder_names(root, folder, group)
        if dicoms:
            for s in dicom_series(dicoms, g, name, folder):
                found.append(((rel, 0, natural_key(s.series)), s))
        if images or not dicoms:
            found.append(((rel, 0, ()), Series(g, name, folder, natural_sorted(images, key=lambda p: p.name))))
    found.sort(key=lambda t: t[0])
    series = [s for _, s in found]
    if group is None:
        _dicom_patients(root, series)
    return series


def _nifti_folder(root: Path, folder: Path, niftis: list[Path], group: str | None):
    """The NIfTI volumes of one folder, each a series: named by its stem, or by its whole file
    name where two volumes share a stem (``P001.nii`` and ``P001.nii.gz``); one patient per
    volume, named by the stem, except in a folder below INPUT holding this one volume only
    (``P7/ct.nii.gz``: the folder names the patient)."""
    from covtool.ct.volumes import nifti_series, nifti_stem

    stems = Counter(nifti_stem(n) for n in niftis)
    by_folder = folder != root and len(niftis) == 1
    for n in natural_sorted(niftis, key=lambda p: p.name):
        stem = nifti_stem(n)
        name = stem if stems[stem] == 1 else n.name
        series = nifti_series(n, group or (folder.name if by_folder else stem), name)
        if group is None:
            series.group_key = ("nifti", str(folder.resolve())) + (() if by_folder else (stem,))
            series.group_prefix = _name_of(root, folder.parent if by_folder else folder)
        yield n, series


def _few(names, n: int = 6) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


def _dicom_patients(root: Path, series: list[Series]) -> None:
    """Name DICOM series' patients (docs/select.md, "Patients"): the folder rule, where the
    PatientIDs do not say otherwise. The patient's folder is, for a series folder S:

    * the folder on the way from S up to INPUT that is named as S's PatientID, where one is;
    * S itself, when the folder the rule takes (the one above S) holds series of several
      PatientIDs (a folder of patients, not a patient's folder: never merged, one warning), or
      when S is INPUT;
    * the folder the rule takes where it holds several series folders of S's PatientID
      (``patient1/SR_2`` and ``patient1/SR_3``: ``patient1``);
    * where it holds S alone: that folder, if some folder at its depth in INPUT is a patient's
      (several series folders, one PatientID) and none a folder of patients; else S
      (``COVID-19 subjects/P001``, alone: nothing says the category folder is a patient).

    Where S itself holds the files of several PatientIDs, each is its own patient, named by its
    PatientID (one warning). Series without a PatientID keep the folder rule. PatientIDs made all
    equal by an anonymiser cannot tell patients apart: then the folders do.
    """
    dicom = [s for s in series if s.kind == "dicom" and s.patient_id and s.folder is not None]
    in_folder: dict[Path, set[str]] = {}
    for s in dicom:
        in_folder.setdefault(s.folder, set()).add(s.patient_id)
    by_rule: dict[Path, list[Series]] = {}
    for s in dicom:
        if s.folder != root:
            by_rule.setdefault(_rule_folder(root, s.folder), []).append(s)
    patient_level, patients_level = set(), set()   # depths of S where R is a patient's folder, or not
    for mates in by_rule.values():
        depth = len(mates[0].folder.relative_to(root).parts)
        if len({m.patient_id for m in mates}) > 1:
            patients_level.add(depth)
        elif len({m.folder for m in mates}) > 1:
            patient_level.add(depth)
    for s in dicom:
        up = [s.folder, *[a for a in s.folder.parents if a.is_relative_to(root)]]
        named = next((a for a in up if _name_of(root, a) == s.patient_id), None)
        rule = _rule_folder(root, s.folder)
        mates = by_rule.get(rule, [])
        if len(in_folder[s.folder]) > 1:
            home, name, key = s.folder, s.patient_id, (str(s.folder.resolve()), s.patient_id)
        else:
            if named is not None:
                home = named
            elif (s.folder == root or rule == s.folder or len({m.patient_id for m in mates}) > 1
                  or all(m.folder == s.folder for m in mates)
                  and len(s.folder.relative_to(root).parts) not in patient_level - patients_level):
                home = s.folder
            else:
                home = rule
            name, key = _name_of(root, home), (str(home.resolve()),)
        s.group, s.group_key = name, ("dicom",) + key
        s.group_prefix = _name_of(root, home.parent if home != root else root.resolve().parent)
    for folder, pids in in_folder.items():
        if len(pids) > 1:
            first = next(s for s in dicom if s.folder == folder)
            first.warnings.append(f"{folder}: DICOM files of {len(pids)} patients (PatientID "
                                  f"{_few(sorted(pids))}) in one folder: each patient is its own "
                                  "group, named by its PatientID")
    for rule, mates in by_rule.items():
        pids = {m.patient_id for m in mates}
        if len(pids) > 1 and rule != mates[0].folder:
            names = list(dict.fromkeys(m.group for m in mates))
            mates[0].warnings.append(
                f"{rule}: DICOM series of {len(pids)} patients (their PatientIDs differ): each is "
                f"its own patient ({_few(names)}), not one patient '{rule.name}'")


def _distinct_groups(series: list[Series]) -> None:
    """Two patients never share a group: where patients of different ``group_key`` got one name
    (``a/SR_2`` and ``b/SR_2``, each a patient's only series folder), each is named
    ``<the folder above>_<name>``, then numbered where that is not enough; one warning each."""
    keys: dict[str, dict[tuple, list[Series]]] = {}
    for s in series:
        if s.group_key is not None:
            keys.setdefault(s.group, {}).setdefault(s.group_key, []).append(s)
    taken = {s.group for s in series}
    for name, patients in keys.items():
        if len(patients) < 2:
            continue
        renamed = []
        for k, members in enumerate(patients.values(), start=1):
            new = safe_id(members[0].group_prefix, name) if members[0].group_prefix else name
            if new in taken:
                new = f"{name}_{k}"
            taken.add(new)
            renamed.append(new)
            for s in members:
                s.group = new
        first = next(iter(patients.values()))[0]
        first.warnings.append(f"{name}: the name of {len(patients)} patients (their PatientIDs or "
                              f"volumes differ): named {_few(renamed)}")


def find_series(root: str | os.PathLike, group: str | None = None) -> list[Series]:
    """All series under ``root`` (a folder, or one NIfTI file), in natural order of their folders.

    Leaf folders without any image are reported as empty series (``slices == []``) so the caller
    can name them; hidden folders and files, and DICOMDIR files, are ignored; symbolic links to
    folders are followed. A folder holding no series at all is an error naming it.
    """
    series = _find(root, group)
    _distinct_groups(series)
    return series


def _find(root: str | os.PathLike, group: str | None) -> list[Series]:
    from covtool.ct.volumes import is_nifti_name, nifti_series, nifti_stem

    root = Path(root)
    if not root.exists():
        raise CovtoolError("no such file or folder", root)
    if not root.is_dir():
        if is_nifti_name(root.name):
            stem = nifti_stem(root)
            s = nifti_series(root, group or stem, stem)
            if group is None:
                s.group_key, s.group_prefix = ("nifti", str(root.resolve().parent), stem), root.resolve().parent.name
            return [s]
        raise CovtoolError("expected a folder of patients, a series folder, a NIfTI volume "
                           "(.nii, .nii.gz) or a manifest (.csv)", root)
    series = _listing(root, group)
    if not series:
        raise CovtoolError("no CT series found: no image, DICOM or NIfTI file in the folder or "
                           "below it", root)
    return series


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


def _group_entries(entries) -> list[Series]:
    """Series of ``(group, series, path, row, slice_index)`` entries, in first-seen order of
    their ``(group, series)``; an empty series name is the group's."""
    groups: dict[tuple[str, str], list] = {}
    for g, s, p, row, k in entries:
        k = None if k in ("", None) or (isinstance(k, float) and k != k) else k
        groups.setdefault((str(g), str(s) if s not in ("", None) else str(g)), []).append((Path(p), row, k))
    return [series for (g, s), items in groups.items() for series in _manifest_series(g, s, items)]


def series_from_manifest(df: pd.DataFrame) -> list[Series]:
    """Group a slice manifest into series: DICOM rows in anatomical order, NIfTI rows (``path``
    the volume, optional ``slice_index``) as their volume's slices, others in natural order of
    their file names. ``Series.rows`` holds each slice's index in ``df``."""
    n = len(df)
    series = df["series"] if "series" in df.columns else df["group"]
    index = df["slice_index"] if "slice_index" in df.columns else [""] * n
    return _group_entries(zip(df["group"], series, df["path"], df.index, index))


def series_from_rows(rows: Sequence[Row]) -> list[Series]:
    """:func:`series_from_manifest` for manifest :class:`Row` views (no pandas);
    ``Series.rows`` holds each slice's Row."""
    return _group_entries((r.raw("group", ""), r.raw("series", r.raw("group", "")), r.raw("path"),
                           r, r.raw("slice_index", "")) for r in rows)


def collect_series(inputs: list[str], group: str | None) -> tuple[list[Series], Table | None]:
    """The series of every INPUT (folder, NIfTI file or manifest) and the manifests' rows (one
    :class:`~covtool.core.manifest.Table` of every manifest INPUT's rows, or None), read without
    pandas."""
    from covtool.core.manifest import Table, is_manifest_arg, read_table

    series: list[Series] = []
    folders: list[Series] = []   # the folder and volume inputs' series, named apart together
    tables: list[Table] = []
    for arg in inputs:
        if is_manifest_arg(arg):
            table = read_table(arg, required=["path", "group"])
            tables.append(table)
            series.extend(series_from_rows(table.rows))
        else:
            found = _find(arg, group)
            series.extend(found)
            folders.extend(found)
    _distinct_groups(folders)
    if not tables:
        return series, None
    if len(tables) == 1:
        return series, tables[0]
    columns = list(dict.fromkeys(c for t in tables for c in t.columns))
    return series, Table(columns, [r for t in tables for r in t.rows], tables[0].name)
