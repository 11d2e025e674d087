"""COVID-CT (Zhao et al. 2020, UCSD-AI4H/COVID-CT) in its release layout.

Expected under DIR (docs/ingest.md lists every assumption)::

    [Images-processed/]CT_COVID/*.png|jpg        the 349 COVID-19 CT images
    [Images-processed/]CT_NonCOVID/*.png|jpg     the non-COVID CT images
    Data-split/COVID/{train,val,test}CT_COVID.txt         one image name per line
    Data-split/NonCOVID/{train,val,test}CT_NonCOVID.txt
    [Data-split/]COVID-CT-MetaInfo.xlsx|csv      File name, Patient ID, DOI, Captions, ...
    [Data-split/]NonCOVID-CT-MetaInfo.csv|xlsx   ,image name,patient id (an unnamed index first)

The label is the image folder's class; ``split`` comes from the split list naming the image;
``group`` is the patient from the class's metadata table (the release: 349 COVID images of 213
patient ids, 397 non-COVID images of 171), so a patient can be kept in one split. The official
lists are taken as they are; a patient in two of them is warned about, never moved.
"""

from __future__ import annotations

import re
from pathlib import Path

from covtool.core.errors import ParameterError
from covtool.core.imageio import is_image_file
from covtool.core.naming import natural_key, safe_id
from covtool.datasets.common import (
    DatasetError,
    Ingested,
    Tally,
    check_image,
    column_key,
    dataset_folder,
    find_column,
    find_files,
    read_table,
)

#: Image folder -> class key (``covid``/``noncovid``), as released.
CLASS_FOLDERS = {"ct_covid": "covid", "ct_noncovid": "noncovid"}
SPLIT_FILE = re.compile(r"^(train|val|test)ct_(covid|noncovid)\.txt$", re.IGNORECASE)
META_NAMES = {
    "covid": ["COVID-CT-MetaInfo.xlsx", "COVID-CT-MetaInfo.csv"],
    "noncovid": ["NonCOVID-CT-MetaInfo.xlsx", "NonCOVID-CT-MetaInfo.csv"],
}
#: The metadata tables' spellings of the three columns covtool interprets.
FILE_COLUMNS = ("File name", "filename", "image", "file", "image name")
PATIENT_COLUMNS = ("Patient ID", "patientid", "patient", "patient_id")
CAPTION_COLUMNS = ("Captions", "Caption")
COLUMNS = ["id", "path", "label", "group", "split", "source", "patientid", "caption"]


def find_class_folders(root: Path) -> dict[str, Path]:
    """``{"covid": .../CT_COVID, "noncovid": .../CT_NonCOVID}`` found up to two levels down."""
    found: dict[str, Path] = {}
    for depth_glob in ("*", "*/*", "*/*/*"):
        for p in sorted(root.glob(depth_glob)):
            key = CLASS_FOLDERS.get(p.name.lower())
            if key and p.is_dir() and key not in found:
                found[key] = p
    if not found:
        raise DatasetError("no CT_COVID or CT_NonCOVID image folder (unzip Images-processed/*.zip first)", root)
    return found


def read_split_lists(root: Path, tally: Tally, split_dir: Path | None = None) -> dict[tuple[str, str], str]:
    """``{(class, image name lower-case): split}`` from the Data-split text files."""
    base = split_dir or next((p for p in [root / "Data-split", root / "data-split"] if p.is_dir()), root)
    files = [p for p in sorted(base.rglob("*.txt")) if SPLIT_FILE.match(p.name)]
    names = [p.name.lower() for p in files]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ParameterError("split_dir", f"{len(files)} split lists with repeated names "
                             f"({', '.join(dup)}): choose one set", path=base)
    out: dict[tuple[str, str], str] = {}
    where: dict[tuple[str, str], tuple[Path, int]] = {}
    for f in files:
        split, cls = SPLIT_FILE.match(f.name).groups()
        cls = cls.lower()
        for lineno, line in enumerate(f.read_text(encoding="utf-8-sig").splitlines(), start=1):
            name = line.strip()
            if not name:
                continue
            key = (cls, name.lower())
            if key in out and out[key] != split.lower():
                first = where[key]
                tally.bad(f, "image in two splits", f"'{name}' is also in {first[0].name}:{first[1]}", lineno)
                continue
            out[key] = split.lower()
            where[key] = (f, lineno)
    return out


def read_metadata(root: Path, cls: str, meta: Path | None = None) -> dict[str, dict]:
    """``{image name lower-case: {column: value}}`` from the class's MetaInfo table (if any)."""
    if meta is None:
        found = find_files(root, META_NAMES[cls])
        if not found:
            return {}
        # a CSV export beside the workbook is read in preference (no Excel reader needed)
        meta = next((p for p in found if p.suffix.lower() == ".csv"), found[0])
    df = read_table(meta)
    fcol = find_column(df.columns, *FILE_COLUMNS)
    if fcol is None:
        raise DatasetError(f"no image-name column (one of {', '.join(FILE_COLUMNS)}) "
                           f"in columns {', '.join(df.columns)}", meta, 1)
    out = {}
    for idx, row in df.iterrows():
        name = str(row[fcol]).strip()
        if name:
            out[name.lower()] = {str(c): str(row[c]).strip() for c in df.columns}
            out[name.lower()]["_line"] = idx
    return out


def _lookup(meta: dict[str, dict], name: str) -> dict | None:
    """The metadata row of an image: by file name, or by stem (some exports drop the suffix)."""
    return meta.get(name.lower()) or meta.get(Path(name).stem.lower())


def ingest_covid_ct(root: str | Path, *, skip_bad: bool = False, verify: bool = True,
                    labels: tuple[str, str] = ("covid", "noncovid"),
                    split_dir: Path | None = None, metadata: Path | None = None) -> Ingested:
    """Read the COVID-CT release into manifest rows.

    Parameters
    ----------
    root : path
        The dataset folder (the repository's root, or the folder holding CT_COVID/CT_NonCOVID).
    skip_bad : bool
        Count and skip bad files instead of raising :class:`DatasetError`.
    verify : bool
        Decode every image once, so a damaged file is found here and not during training.
    labels : (str, str)
        Label written for the COVID and the non-COVID class.
    split_dir, metadata : path, optional
        The Data-split folder and the COVID MetaInfo table, where auto-discovery does not fit.

    Returns
    -------
    Ingested
        Columns ``id, path, label, group, split, source, patientid, caption`` plus every other
        metadata column (``column_key`` names: ``doi``, ``age``, ``gender``, ...).
    """
    root = dataset_folder(root)
    tally = Tally(skip_bad)
    folders = find_class_folders(root)
    splits = read_split_lists(root, tally, split_dir)
    label_of = dict(zip(("covid", "noncovid"), labels))
    rows: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for cls, folder in folders.items():
        meta = read_metadata(root, cls, metadata if cls == "covid" else None)
        unmatched = 0
        for p in sorted(folder.iterdir(), key=lambda q: natural_key(q.name)):
            if p.name.startswith("."):
                continue  # hidden files (.DS_Store) are file-system litter, not items
            if p.is_dir() or not is_image_file(p):
                tally.bad(p, "unknown file", "not an image")
                continue
            key = (cls, p.name.lower())
            seen.add(key)
            if verify and not check_image(p, tally):
                continue
            m = _lookup(meta, p.name)
            unmatched += bool(meta) and m is None
            row = {"id": safe_id(cls, p.stem), "path": str(p), "label": label_of[cls],
                   "split": splits.get(key, "")}
            if m is not None:
                for col, value in m.items():
                    if col != "_line":
                        row[column_key(col)] = value
                pcol = find_column(m.keys(), *PATIENT_COLUMNS)
                row["patientid"] = m[pcol] if pcol else ""
                ccol = find_column(m.keys(), *CAPTION_COLUMNS)
                row["caption"] = m[ccol] if ccol else ""
                for c in (pcol, ccol, find_column(m.keys(), *FILE_COLUMNS)):
                    if c:
                        row.pop(column_key(c), None)
                row["source"] = row.get("doi", "")
            pid = row.get("patientid", "")
            # classes come from separate tables: prefix the class so patient '1' of one is not the other's
            row["group"] = safe_id(cls, pid) if pid else row["id"]
            rows.append(row)
        if unmatched:
            tally.warn(f"{unmatched} {folder.name} image(s) have no row in the class's MetaInfo "
                       "table: no patient id, each is its own group")
    for (cls, name), split in sorted(splits.items()):
        if (cls, name) not in seen and cls in folders:
            tally.bad(folders[cls] / name, "listed but missing", f"named in the {split} list, no such image")
    return tally.result(rows, COLUMNS)
