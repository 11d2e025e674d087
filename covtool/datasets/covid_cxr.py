"""The COVID-19 image data collection (Cohen et al., ieee8023/covid-chestxray-dataset).

Expected under DIR::

    metadata.csv      one row per image (either release schema, see JUNE_2020 and LATER)
    images/           the 2-D files named in 'filename' (the 'folder' column, where present,
    volumes/          names the folder: images/ or volumes/, the latter CT volumes, .nii.gz)

Filters (modality, view, finding) and the label mapping act on the metadata before any file is
opened; every removed item is counted under its reason. ``group`` is ``patientid``: the
collection has several images per patient (follow-ups, views), which must stay in one split.
An image listed under several patient ids is one item, and those patients are one group
(docs/ingest.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
    read_table,
)

#: metadata.csv's columns as the paper (Table 2) lists them, in manifest spelling.
SCHEMA = ["patientid", "offset", "sex", "age", "finding", "survival", "view", "modality", "date",
          "location", "filename", "doi", "url", "license", "clinical_notes", "other_notes"]
#: The table as of June 2020: 28 named columns, then an unnamed one (a comma ends every line).
JUNE_2020 = ["patientid", "offset", "sex", "age", "finding", "survival", "intubated",
             "intubation_present", "went_icu", "in_icu", "needed_supplemental_O2", "extubated",
             "temperature", "pO2_saturation", "leukocyte_count", "neutrophil_count",
             "lymphocyte_count", "view", "modality", "date", "location", "folder", "filename",
             "doi", "url", "license", "clinical_notes", "other_notes"]
#: Later releases: ``RT_PCR_positive`` after ``finding``, findings as paths
#: (``Pneumonia/Viral/COVID-19``); the unnamed last column stays (pandas: ``Unnamed: 29``).
LATER = JUNE_2020[:5] + ["RT_PCR_positive"] + JUNE_2020[5:]
#: The manifest name of the unnamed last column: empty on almost every row, on a few it holds
#: the tail of a note (a credit line, a publisher's licence text).
EXTRA_COLUMN = "extra_notes"
REQUIRED = ["patientid", "finding", "filename"]
COLUMNS = ["id", "path", "label", "group", "source"] + SCHEMA
#: CT volumes (the folder ``volumes/``): not 2-D images, removed by name, never opened.
VOLUME_SUFFIXES = (".nii", ".nii.gz")
VOLUME_REASON = "volume (.nii.gz CT), not a 2-D image"


def parse_label_map(items: Sequence[str]) -> list[tuple[re.Pattern, str]]:
    """``["COVID-19=covid", "No Finding=normal"]`` -> ordered (regex, label) pairs.

    Each PATTERN is a regular expression searched (case-insensitive) in ``finding``; the first
    that matches gives the label.
    """
    out = []
    for item in items:
        pattern, sep, label = item.rpartition("=")
        if not sep or not pattern.strip() or not label.strip():
            raise ParameterError("label_map", f"expects PATTERN=LABEL, got {item!r}")
        try:
            out.append((re.compile(pattern.strip(), re.IGNORECASE), label.strip()))
        except re.error as exc:
            raise ParameterError("label_map", f"{item!r}: bad regular expression ({exc})") from None
    return out


def map_label(finding: str, label_map: list[tuple[re.Pattern, str]]) -> str | None:
    """The label of a finding: the first matching pattern's, the finding itself without a map,
    ``None`` when a map is given and nothing matches.

    A pattern is searched anywhere in the whole finding, so on the later schema's paths
    ``COVID-19`` matches ``Pneumonia/Viral/COVID-19`` as it matches the June 2020 table's
    ``COVID-19``, and ``Viral`` matches every viral pneumonia (in June 2020, none).
    """
    if not label_map:
        return finding
    for pattern, label in label_map:
        if pattern.search(finding):
            return label
    return None


class PatientUnion:
    """Union-find over patient ids: patients listed with one image are one group."""

    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, pid: str) -> str:
        self.parent.setdefault(pid, pid)
        root = pid
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[pid] != root:  # path compression
            self.parent[pid], pid = root, self.parent[pid]
        return root

    def union(self, ids: Sequence[str]) -> None:
        roots = [self.find(p) for p in ids]
        for r in roots[1:]:
            self.parent[r] = roots[0]

    def groups(self) -> dict[str, str]:
        """``{patient id: group name}``; a group of several patients is named by its ids,
        in natural order, joined with ``+`` (``285+339``)."""
        members: dict[str, list[str]] = {}
        for pid in self.parent:
            members.setdefault(self.find(pid), []).append(pid)
        out = {}
        for ids in members.values():
            name = "+".join(sorted(ids, key=natural_key))
            out.update(dict.fromkeys(ids, name))
        return out


def read_listings(df, meta_path: Path, tally: Tally) -> tuple[list[dict], list[dict]]:
    """The table's rows, one record per image (``folder``, ``filename``): ``(records, merged)``.

    A record is the image's first row, with ``_lines`` and ``_pids`` (every listing's line and
    patient id, in table order); ``merged`` are the records of images listed more than once.
    """
    records: dict[tuple[str, str], dict] = {}
    for idx, rec in df.iterrows():
        rec = {c: str(v).strip() for c, v in rec.items()}
        if not rec["filename"]:
            tally.bad(meta_path, "no file name", "empty 'filename'", idx)
            continue
        key = ((rec.get("folder") or "images").lower(), rec["filename"].lower())
        first = records.get(key)
        if first is None:
            records[key] = {**rec, "_lines": [idx], "_pids": [rec["patientid"]], "_differ": set()}
            continue
        first["_lines"].append(idx)
        first["_pids"].append(rec["patientid"])
        first["_differ"] |= {c for c, v in rec.items() if c != "patientid" and first.get(c) != v}
    merged = [r for r in records.values() if len(r["_lines"]) > 1]
    return list(records.values()), merged


def report_merged(merged: list[dict], groups: dict[str, str], meta_path: Path,
                  tally: Tally) -> None:
    """One warning: the images listed more than once and the patient groups they made."""
    if not merged:
        return
    joined = sorted({groups[p] for r in merged for p in r["_pids"] if p and "+" in groups[p]},
                    key=natural_key)
    differ = sorted(set().union(*(r["_differ"] for r in merged)))
    lines = ", ".join("/".join(str(i) for i in r["_lines"]) for r in merged[:6])
    more = f", ... ({len(merged)} in all)" if len(merged) > 6 else ""
    tally.warn(f"{meta_path.name}: {len(merged)} image(s) listed more than once "
               f"(lines {lines}{more}) are one item each, with the first listing's columns"
               + (f" (the others differ in {', '.join(differ)})" if differ else "")
               + (f"; patients joined into one group: {', '.join(joined)}" if joined else ""))


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
        Columns ``id, path, label, group, source`` and the metadata's columns (snake_case; the
        unnamed last one as ``extra_notes``). An image listed under several patient ids has
        them all in ``patientid`` (``285;339``) and its group joins those patients'
        (``285+339``); a warning names them.
    """
    root = dataset_folder(root)
    meta_path = metadata or root / "metadata.csv"
    if not meta_path.is_file():
        raise DatasetError("no metadata.csv (the collection's table of images)", meta_path)
    try:
        finding_re = re.compile(finding, re.IGNORECASE) if finding else None
    except re.error as exc:
        raise ParameterError("finding", f"{finding!r}: bad regular expression ({exc})") from None
    mapping = parse_label_map(label_map)
    want_views = {v.strip().lower() for v in views if v.strip()}
    df = read_table(meta_path, last_column=EXTRA_COLUMN)
    df.columns = [column_key(c) for c in df.columns]
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DatasetError(f"missing column {', '.join(missing)} (columns: {', '.join(df.columns)})", meta_path, 1)
    tally = Tally(skip_bad)
    records, merged = read_listings(df, meta_path, tally)
    union = PatientUnion()
    for rec in records:
        union.union([p for p in rec["_pids"] if p])
    groups = union.groups()
    report_merged(merged, groups, meta_path, tally)
    rows: list[dict] = []
    listed: set[Path] = set()
    for rec in records:
        folder = root / (rec.get("folder") or "images")
        name, line = rec["filename"], rec["_lines"][0]
        listed.add((folder / name).resolve())
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
        if name.lower().endswith(VOLUME_SUFFIXES):
            tally.drop(VOLUME_REASON)
            continue
        path = folder / name
        if not path.is_file():
            tally.bad(meta_path, "missing image", f"'{name}' is not in {folder.name}/", line)
            continue
        if not is_image_file(path):
            tally.bad(path, "unsupported file", "not a 2-D image covtool reads (volumes need another reader)")
            continue
        if verify and not check_image(path, tally):
            continue
        pids = list(dict.fromkeys(p for p in rec["_pids"] if p))
        row = {"id": safe_id(Path(name).stem), "path": str(path), "label": label,
               "group": groups[pids[0]] if pids else safe_id(Path(name).stem),
               "source": rec.get("doi") or rec.get("url", "")}
        row.update({c: v for c, v in rec.items() if not c.startswith("_")})
        row["patientid"] = ";".join(pids)
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
