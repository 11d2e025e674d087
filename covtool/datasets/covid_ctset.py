"""COVID-CTset (Rahimzadeh et al., mr7495/COVID-CTset) in its published layout.

Both parts of the release are read, alone or together, from anywhere under DIR::

    <part>/<patientN>/SR_2|SR_3|SR_4/IM00010.tif     COVID-CTset.zip: raw 16-bit series
    <any folder>/137covid_patient1_SR_2_IM00010.tif  Training&Validation.zip: flattened names
    train{k}.csv, validation{k}.csv, test{k}.csv     fold lists: filename,class
    all.csv                                          filename,class (optional)
    Patient_details.csv                              Patient ID, SEX, AGE, Date,
                                                     COVID-19 Infection, SR_k Folder thickness(mm)

A slice is known by its canonical name ``<part>_<patient>_<series>_<IM>.tif`` (the name the fold
lists use); ``group`` is the patient (``patient1``), ``series`` the sequence
``<part>_<patient>_<series>`` (one slice thickness), so ``covtool select`` reads the manifest
directly.

The two parts hold the same slices on two scales (paper, section 2.1 and 2.4): the raw part the
scanner's 16-bit stored values (HU + 1024: its DICOM headers give slope 1, intercept -1024), the
training part 32-bit floats, each image divided by its own maximum "to make these images visible
with standard monitors". One manifest holds one part (``part``), and its ``value_scale`` column says
which scale (:mod:`covtool.core.scale`), so that train, eval and patient-diagnose can tell a model
trained on one scale from data on the other.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from covtool.core.errors import ParameterError
from covtool.core.imageio import is_image_file
from covtool.core.naming import natural_key
from covtool.core.scale import PER_IMAGE_MAX, STORED, scale_of_dtype
from covtool.datasets.common import (
    DatasetError,
    Ingested,
    Tally,
    check_image,
    dataset_folder,
    find_column,
    find_files,
    read_table,
    split_name,
)

FLAT_NAME = re.compile(r"^(?P<part>[A-Za-z0-9]+)_(?P<patient>patient\d+)_(?P<series>SR_\d+)_(?P<im>IM\d+)\.tiff?$",
                       re.IGNORECASE)
SLICE_NAME = re.compile(r"^(?P<im>IM\d+)\.tiff?$", re.IGNORECASE)
PATIENT_DIR = re.compile(r"^patient\d+$", re.IGNORECASE)
SERIES_DIR = re.compile(r"^SR_\d+$", re.IGNORECASE)
FOLD_LIST = re.compile(r"^(train|validation|val|test)(\d+)\.csv$", re.IGNORECASE)
#: Patient_details' "COVID-19 Infection" -> label.
INFECTION = {"positive": "covid", "negative": "normal"}
COLUMNS = ["id", "path", "label", "group", "split", "fold", "source", "series", "value_scale", "patientid",
           "sex", "age", "date", "infection", "thickness_mm"]
#: The release's two parts: how a slice of each is found, and the scale its values are on.
PARTS = {"raw": STORED, "training": PER_IMAGE_MAX}
TABLES = {"patient_details.csv", "patients_metadata.csv", "all.csv"}


def slice_key(path: Path, root: Path) -> tuple[str, str, str, str] | None:
    """``(part, patient, series, IM)`` from a flattened name or from the raw folder layout."""
    m = FLAT_NAME.match(path.name)
    if m:
        return m["part"], m["patient"].lower(), m["series"].upper(), m["im"].upper()
    m = SLICE_NAME.match(path.name)
    parts = path.relative_to(root).parts
    if m and len(parts) >= 4 and SERIES_DIR.match(parts[-2]) and PATIENT_DIR.match(parts[-3]):
        return parts[-4], parts[-3].lower(), parts[-2].upper(), m["im"].upper()
    return None


def canonical_name(key: tuple[str, str, str, str]) -> str:
    return "{}_{}_{}_{}.tif".format(*key)


def read_details(path: Path) -> dict[str, dict]:
    """``{patient: {sex, age, date, infection, SR_2: mm, ...}}`` from Patient_details.csv."""
    df = read_table(path)
    pcol = find_column(df.columns, "Patient ID", "patient", "patientid")
    icol = find_column(df.columns, "COVID-19 Infection", "infection")
    if pcol is None or icol is None:
        raise DatasetError(f"expected columns 'Patient ID' and 'COVID-19 Infection' (columns: "
                           f"{', '.join(df.columns)})", path, 1)
    out = {}
    for idx, rec in df.iterrows():
        pid = str(rec[pcol]).strip().lower()
        if not pid:
            continue
        info = {"_line": idx, "infection": str(rec[icol]).strip()}
        for name, cands in (("sex", ("SEX", "sex")), ("age", ("AGE", "age")), ("date", ("Date",))):
            col = find_column(df.columns, *cands)
            info[name] = str(rec[col]).strip() if col else ""
        for col in df.columns:
            m = re.match(r"^\s*(SR_\d+)\s+folder\s+thickness", str(col), re.IGNORECASE)
            if m:
                value = str(rec[col]).strip()
                info[m[1].upper()] = "" if value.upper() in ("N/A", "NA", "") else value
        out[pid] = info
    return out


def parse_age(text: str) -> str:
    """DICOM age strings (``053Y``) as whole years (``53``); anything else unchanged."""
    m = re.fullmatch(r"0*(\d+)\s*Y", text.strip(), re.IGNORECASE)
    return str(int(m[1])) if m else text


def read_lists(root: Path, tally: Tally) -> tuple[dict[str, str], dict[int, dict[str, str]]]:
    """Classes of the listed slices, and each fold's split per slice.

    Returns ``({name: class}, {fold: {name: split}})``; names are lower-case canonical names.
    """
    classes: dict[str, str] = {}
    splits: dict[int, dict[str, str]] = {}
    lists = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        lists += [Path(dirpath) / f for f in sorted(filenames) if FOLD_LIST.match(f) or f.lower() == "all.csv"]
    for f in lists:
        m = FOLD_LIST.match(f.name)
        fold_splits = splits.setdefault(int(m[2]), {}) if m else None
        df = read_table(f)
        ncol, ccol = find_column(df.columns, "filename"), find_column(df.columns, "class")
        if ncol is None or ccol is None:
            raise DatasetError(f"expected columns filename,class (columns: {', '.join(df.columns)})", f, 1)
        for idx, name, cls in zip(df.index, df[ncol], df[ccol]):
            name, cls = str(name).strip().lower(), str(cls).strip().lower()
            if not name:
                continue
            if name in classes and classes[name] != cls:
                tally.bad(f, "class conflict", f"'{name}' is '{classes[name]}' in another list", idx)
                continue
            classes[name] = cls
            if fold_splits is not None:
                split = split_name(m[1])
                if name in fold_splits and fold_splits[name] != split:
                    tally.bad(f, "slice in two splits",
                              f"'{name}' is also in the {fold_splits[name]} list of fold {m[2]}", idx)
                    continue
                fold_splits[name] = split
    return classes, splits


def release_part(path: Path, root: Path) -> str | None:
    """``raw`` for a slice in the raw part's folders, ``training`` for a flattened name."""
    if FLAT_NAME.match(path.name):
        return "training"
    return "raw" if slice_key(path, root) is not None else None


def stored_dtype(path: Path) -> np.dtype | None:
    """A TIFF's sample type from its header alone (None where the header cannot say)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return np.dtype(tif.pages[0].dtype) if tif.pages else None
    except Exception:  # a damaged file: check_image (or a later stage) names it
        return None


def choose_part(found: dict[str, list[Path]], part: str | None, root: Path) -> str | None:
    """The part to read: ``part`` where given, else the only one found; both found is an error
    (the same slices twice, on two scales)."""
    if part is not None:
        if part not in PARTS:
            raise ParameterError("part", f"unknown part '{part}' (choose {' or '.join(PARTS)})")
        return part
    present = [p for p in PARTS if found.get(p)]
    if len(present) > 1:
        raw, train = found["raw"], found["training"]
        raise ParameterError(
            "part", f"both parts of the release are here: {len(raw)} raw 16-bit slices (e.g. "
            f"{raw[0].relative_to(root)}) and {len(train)} training slices divided by their "
            f"maximum (e.g. {train[0].relative_to(root)}); choose raw or training", path=root)
    return present[0] if present else None


def ingest_covid_ctset(root: str | Path, *, skip_bad: bool = False, verify: bool = True,
                       fold: int | None = None, listed_only: bool = False,
                       details: Path | None = None, part: str | None = None) -> Ingested:
    """Read COVID-CTset's slices, fold lists and patient details into manifest rows.

    Parameters
    ----------
    root : path
        The folder holding the unzipped parts and the tables (at any depth).
    fold : int, optional
        The fold whose train/validation/test lists give ``split`` (1..5); default: the lowest
        fold found, when there are fold lists.
    listed_only : bool
        Keep only slices named in a fold list or all.csv (the expert-labelled training data);
        the others are counted as removed.
    details : path, optional
        Patient_details.csv, where it is not under ``root``.
    part : ``"raw"`` or ``"training"``, optional
        The part of the release to read; needed only where both are under ``root``. The other
        part's slices are counted as removed.
    skip_bad, verify
        As for the other readers.

    Returns
    -------
    Ingested
        Columns ``id, path, label, group, split, fold, source, series, value_scale, patientid, sex,
        age, date, infection, thickness_mm``.
    """
    root = dataset_folder(root)
    tally = Tally(skip_bad)
    if details is None:
        found_details = find_files(root, ["Patient_details.csv"])
        details = found_details[0] if found_details else None
    patients = read_details(details) if details is not None else {}
    classes, fold_splits = read_lists(root, tally)
    if fold_splits:
        fold = fold if fold is not None else min(fold_splits)
        if fold not in fold_splits:
            raise DatasetError(f"no fold lists for fold {fold} (found folds "
                               f"{', '.join(map(str, sorted(fold_splits)))})", root)
    elif fold is not None:
        raise ParameterError("fold", f"no fold lists (train{fold}.csv, validation{fold}.csv)", path=root)
    splits = fold_splits.get(fold, {}) if fold is not None else {}
    by_part: dict[str, list[Path]] = {p: [] for p in PARTS}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")), key=natural_key)
        for f in sorted(filenames, key=natural_key):
            p = Path(dirpath) / f
            if f.startswith(".") or f.lower() in TABLES or FOLD_LIST.match(f):
                continue
            which = release_part(p, root) if is_image_file(p) else None
            if which is None:
                tally.bad(p, "unknown file", "not a COVID-CTset slice (<part>_patientN_SR_k_IMnnnnn.tif "
                          "or <part>/patientN/SR_k/IMnnnnn.tif)")
                continue
            by_part[which].append(p)
    chosen = choose_part(by_part, part, root)
    if chosen is None or not by_part[chosen]:
        others = [f"{len(by_part[o])} of the {o} part" for o in PARTS if o != chosen and by_part[o]]
        raise DatasetError(
            "no COVID-CTset slice found" + (f" of the {chosen} part" if chosen else "")
            + " (<part>/patientN/SR_k/IMnnnnn.tif or <part>_patientN_SR_k_IMnnnnn.tif) under this "
            "folder" + (f" ({', '.join(others)})" if others else ""), root)
    for other in PARTS:
        if other != chosen and by_part[other]:
            tally.drop(f"in the {other} part (--part {chosen})", len(by_part[other]))
    files = by_part[chosen] if chosen else []
    scale = PARTS[chosen] if chosen else ""
    if files:
        dtype = stored_dtype(files[0])
        seen_scale = scale_of_dtype(dtype) if dtype is not None else None
        if seen_scale is not None and seen_scale != scale:
            tally.warn(f"{files[0]}: the {chosen} part should hold {scale} values but this slice is "
                       f"{dtype}; its manifest says '{seen_scale}'")
            scale = seen_scale
    rows: list[dict] = []
    seen: dict[str, Path] = {}
    for p in files:
        key = slice_key(p, root)
        name = canonical_name(key)
        if name.lower() in seen:
            tally.bad(p, "duplicate slice", f"same slice as {seen[name.lower()]}")
            continue
        seen[name.lower()] = p
        listed = name.lower() in classes
        if listed_only and not listed:
            tally.drop("not in a fold list")
            continue
        set_name, patient, series, _ = key
        info = patients.get(patient)
        from_details = INFECTION.get(info["infection"].lower()) if info else None
        label = classes.get(name.lower()) or from_details
        if label is None:
            tally.bad(p, "no label", f"{patient} is in neither Patient_details.csv nor a fold list")
            continue
        if listed and from_details and from_details != label:
            tally.bad(p, "class conflict", f"listed as '{label}' but {patient} is "
                      f"'{info['infection']}' in Patient_details.csv")
            continue
        if verify and not check_image(p, tally):
            continue
        split = splits.get(name.lower(), "")
        rows.append({
            "id": Path(name).stem, "path": str(p), "label": label, "group": patient,
            "split": split, "fold": fold if split else "", "source": set_name,
            "series": f"{set_name}_{patient}_{series}", "value_scale": scale, "patientid": patient,
            "sex": info["sex"] if info else "", "age": parse_age(info["age"]) if info else "",
            "date": info["date"] if info else "", "infection": info["infection"] if info else "",
            "thickness_mm": info.get(series, "") if info else "",
        })
    listed_missing = sorted(set(classes) - set(seen))
    if listed_missing:
        tally.drop(f"listed, not in the {chosen or 'chosen'} part" if chosen else "listed, not on disk",
                   len(listed_missing))
    return tally.result(rows, COLUMNS)
