"""The COVID-19 image data collection (Cohen et al., ieee8023/covid-chestxray-dataset).

Expected under DIR::

    metadata.csv      patientid, offset, sex, age, finding, survival, view, modality, date,
                      location, filename, doi, url, license, clinical notes, other notes, ...
    images/           the files named in 'filename' (a 'folder' column, where present, names
                      the folder instead: images/ or volumes/)

Filters (modality, view, finding) and the label mapping act on the metadata before any file is
opened; every removed row is counted under its reason. ``group`` is ``patientid``: the collection
has several images per patient (follow-ups, views), which must stay in one split.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from covtool.core.errors import UsageError
from covtool.core.imageio import is_image_file
from covtool.core.naming import safe_id
from covtool.datasets.common import (
    DatasetError,
    Ingested,
    Tally,
    check_image,
    column_key,
    read_table,
)

#: metadata.csv's columns as the paper (Table 2) lists them, in manifest spelling.
SCHEMA = ["patientid", "offset", "sex", "age", "finding", "survival", "view", "modality", "date",
          "location", "filename", "doi", "url", "license", "clinical_notes", "other_notes"]
REQUIRED = ["patientid", "finding", "filename"]
COLUMNS = ["id", "path", "label", "group", "source"] + SCHEMA


def parse_label_map(items: Sequence[str]) -> list[tuple[re.Pattern, str]]:
    """``["COVID-19=covid", "No Finding=normal"]`` -> ordered (regex, label) pairs.

    Each PATTERN is a regular expression searched (case-insensitive) in ``finding``; the first
    that matches gives the label.
    """
    out = []
    for item in items:
        pattern, sep, label = item.rpartition("=")
        if not sep or not pattern.strip() or not label.strip():
            raise UsageError(f"--label-map expects PATTERN=LABEL, got {item!r}")
        try:
            out.append((re.compile(pattern.strip(), re.IGNORECASE), label.strip()))
        except re.error as exc:
            raise UsageError(f"--label-map {item!r}: bad regular expression ({exc})") from None
    return out


def map_label(finding: str, label_map: list[tuple[re.Pattern, str]]) -> str | None:
    """The label of a finding: the first matching pattern's, the finding itself without a map,
    ``None`` when a map is given and nothing matches."""
    if not label_map:
        return finding
    for pattern, label in label_map:
        if pattern.search(finding):
            return label
    return None


def ingest_covid_cxr(root: str | Path, *, skip_bad: bool = False, verify: bool = True,
                     modality: str | None = None, views: Sequence[str] = (),
                     finding: str | None = None, label_map: Sequence[str] = (),
                     metadata: Path | None = None) -> Ingested:
    """Read the collection's metadata.csv and images into manifest rows.

    Parameters
    ----------
    root : path
        The repository folder holding ``metadata.csv`` and ``images/``.
    modality : str, optional
        Keep rows whose ``modality`` equals this (case-insensitive): ``X-ray`` or ``CT``.
    views : sequence of str
        Keep rows whose ``view`` is one of these (case-insensitive): PA, AP, AP Supine, L, ...
    finding : str, optional
        Keep rows whose ``finding`` matches this regular expression (searched, case-insensitive).
    label_map : sequence of str
        ``PATTERN=LABEL`` items (see :func:`parse_label_map`); without them the label is the finding.
    skip_bad, verify, metadata
        As for the other readers; ``metadata`` overrides ``DIR/metadata.csv``.

    Returns
    -------
    Ingested
        Columns ``id, path, label, group, source`` and the metadata's columns (snake_case).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError("no such dataset folder", root)
    meta_path = metadata or root / "metadata.csv"
    if not meta_path.is_file():
        raise DatasetError("no metadata.csv (the collection's table of images)", meta_path)
    try:
        finding_re = re.compile(finding, re.IGNORECASE) if finding else None
    except re.error as exc:
        raise UsageError(f"--finding {finding!r}: bad regular expression ({exc})") from None
    mapping = parse_label_map(label_map)
    want_views = {v.strip().lower() for v in views if v.strip()}
    df = read_table(meta_path)
    df.columns = [column_key(c) for c in df.columns]
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DatasetError(f"missing column {', '.join(missing)} (columns: {', '.join(df.columns)})", meta_path, 1)
    tally = Tally(skip_bad)
    rows: list[dict] = []
    listed: set[Path] = set()
    seen_names: dict[str, int] = {}
    for idx, rec in df.iterrows():
        rec = {c: str(v).strip() for c, v in rec.items()}
        folder = root / (rec.get("folder") or "images")
        listed.add((folder / rec["filename"]).resolve())
        if modality and rec.get("modality", "").lower() != modality.lower():
            tally.drop(f"modality is not {modality}")
            continue
        if want_views and rec.get("view", "").lower() not in want_views:
            tally.drop("view not in --view")
            continue
        if finding_re and not finding_re.search(rec["finding"]):
            tally.drop("finding does not match --finding")
            continue
        label = map_label(rec["finding"], mapping)
        if label is None:
            tally.drop("finding not in --label-map")
            continue
        name = rec["filename"]
        if not name:
            tally.bad(meta_path, "no file name", "empty 'filename'", idx)
            continue
        if name.lower() in seen_names:
            tally.bad(meta_path, "duplicate file name", f"'{name}' is also on line {seen_names[name.lower()]}", idx)
            continue
        seen_names[name.lower()] = idx
        path = folder / name
        if not path.is_file():
            tally.bad(meta_path, "missing image", f"'{name}' is not in {folder.name}/", idx)
            continue
        if not is_image_file(path):
            tally.bad(path, "unsupported file", "not a 2-D image covtool reads (volumes need another reader)")
            continue
        if verify and not check_image(path, tally):
            continue
        row = {"id": safe_id(Path(name).stem), "path": str(path), "label": label,
               "group": rec["patientid"] or safe_id(Path(name).stem),
               "source": rec.get("doi") or rec.get("url", "")}
        row.update(rec)
        rows.append(row)
    # files in the image folders that no metadata row names: reported, never ingested
    for folder in sorted({Path(r["path"]).parent for r in rows} | {root / "images"}):
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if not p.name.startswith(".") and p.resolve() not in listed:
                tally.bad(p, "unknown file", "not named in metadata.csv")
    out = tally.result(rows, COLUMNS)
    ids = out.items["id"]
    if ids.duplicated().any():  # two names with one stem (x.png, x.jpg): keep them apart
        out.items["id"] = [safe_id(Path(p).name) for p in out.items["path"]]
    return out
