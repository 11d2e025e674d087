"""The TEM virus benchmark (Matuszewski & Sintorn 2021) in its released layouts (docs/ingest.md).

The release ("TEM virus dataset") holds two parts; DIR is its root, one part, or a crops folder::

    context_virus_RAW/<split>/<Virus>/<name>.tif                         the raw TEM images
    context_virus_RAW/<split>/<Virus>/particle_positions/<name>_particlepositions.txt
    context_virus_RAW/<split>/<Virus>/tags/<name>.tif_tags.csv           key;value (Xscale nm/px)
    context_virus_1nm_256x256/<split>/<Virus>/<n>_<k>.tif                the authors' 1 nm crops

with ``<split>`` ``train|validation|test``. A *crops* folder is any ``[<split>/]<Virus>/<source
image>_<k>.<image>`` tree (the release's 1 nm part, or crops others cut from the raw part).
covtool's own documented layout is read too (*annotated*): ``[<split>/]<Virus>/<image>`` with its
annotation beside it (same stem, ``.txt``/``.csv``) and ``pixel_sizes.csv`` tables.

Particle files are read with :mod:`covtool.em.annotations` (the release's form is chosen by
the name), so ``rescale`` and ``crop`` read the ``annotation`` column as it is; ``particles``
is the number of annotated objects, the count the paper's representative split balances.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from covtool.core.errors import ImageError, ParameterError
from covtool.core.imageio import is_image_file, read_image
from covtool.core.naming import natural_key, safe_id
from covtool.datasets.common import (
    DatasetError,
    Ingested,
    Tally,
    column_key,
    dataset_folder,
    find_column,
    read_table,
    split_name,
)
from covtool.em.annotations import AnnotationError, check_inside, read_annotations

LAYOUTS = ("auto", "raw", "crops", "annotated")
RAW_PART = "context_virus_RAW"
CROPS_PART = "context_virus_1nm_256x256"
PARTICLE_DIR = "particle_positions"
TAG_DIR = "tags"
PARTICLE_END = "_particlepositions.txt"
TAG_END = "_tags.csv"
#: A crop's stem: ``<source image>_<k>`` (the release: ``<n>_<k>``).
CROP_NAME = re.compile(r"^(?P<source>.+)_(?P<k>\d+)$")
#: The release's crops: 256x256 pixels at 1 nm/px.
CROP_SIZE, CROP_PIXEL_NM = 256, 1.0
#: Xscale and Yscale may differ by this fraction (printed to three decimals); rescale is isotropic.
SCALE_TOLERANCE = 0.01
#: Tag keys (as column keys) with a column of their own; others become ``tag_<key>``.
TAG_COLUMNS = {"magnification": "magnification", "accvoltage": "acc_voltage", "defocus": "defocus"}
USED_TAGS = ("height", "width", "xscale", "yscale")

PIXEL_TABLES = ("pixel_sizes.csv", "pixel_size.csv", "pixelsizes.csv", "metadata.csv")
IMAGE_COLUMNS = ("image", "filename", "file", "name")
SIZE_COLUMNS = ("pixel_size_nm", "pixel_size", "pixelsize_nm", "pixelsize", "nm_per_pixel", "nm_px")
ANNOTATION_SUFFIXES = (".txt", ".csv")
COLUMNS = ["id", "path", "label", "group", "split", "annotation", "pixel_size_nm", "particles"]
RAW_COLUMNS = ["id", "path", "label", "group", "split", "source", "annotation", "pixel_size_nm",
               "particles"]
CROP_COLUMNS = ["id", "path", "label", "group", "split", "source", "pixel_size_nm", "center_x",
                "center_y"]


# ---------------------------------------------------------------------------- tag files

def tag_digits(text: str) -> str:
    """A numeric tag value's own digits with a decimal point: spaces dropped, a decimal comma
    (``-1234,5678``) made a point, nothing else changed (``1200000`` stays ``1200000``)."""
    t = "".join(text.split())
    if t.count(",") == 1 and "." not in t:
        t = t.replace(",", ".")
    return t


def tag_number(text: str) -> float:
    """A tag value as a number; the release writes a decimal comma (``0,867``). ValueError if not."""
    return float(tag_digits(text))


def tag_cell(text: str) -> str:
    """A tag value as a manifest cell: a number as :func:`tag_digits` writes it, other text as it is."""
    digits = tag_digits(text)
    try:
        float(digits)
    except ValueError:
        return text.strip()
    return digits


@dataclass
class Tags:
    """A release tag file: ``{key lower-case: (key, value, line)}`` in file order."""

    path: Path
    rows: dict[str, tuple[str, str, int]]

    def number(self, key: str, positive: bool = True) -> float | None:
        """The value of ``key`` as a number (None when absent); a bad value raises naming the line."""
        if key.lower() not in self.rows:
            return None
        name, value, line = self.rows[key.lower()]
        try:
            v = tag_number(value)
        except ValueError:
            raise DatasetError(f"{name} '{value}' is not a number", self.path, line) from None
        if not math.isfinite(v) or (positive and v <= 0):
            raise DatasetError(f"{name} {value} must be a positive number", self.path, line)
        return v

    def pixel_size_nm(self) -> float:
        """nm per pixel from ``Xscale``, checked against ``Yscale`` when the file has one."""
        x = self.number("Xscale")
        if x is None:
            raise DatasetError("no Xscale row (the pixel size in nm per pixel)", self.path)
        y = self.number("Yscale")
        if y is not None and abs(y - x) > SCALE_TOLERANCE * x:
            raise DatasetError(f"Yscale {self.written('Yscale')} differs from Xscale "
                               f"{self.written('Xscale')} by more than "
                               f"{SCALE_TOLERANCE:.0%} (rescale needs square pixels)",
                               self.path, self.rows["yscale"][2])
        return x

    def check_size(self, shape: tuple[int, ...]) -> None:
        """The tags' ``Width``/``Height`` (when given) are the image's."""
        for key, size in (("Width", shape[1]), ("Height", shape[0])):
            v = self.number(key)
            if v is not None and v != size:
                raise DatasetError(f"{key} {self.written(key)} is not the image's ({shape[1]}x{shape[0]})",
                                   self.path, self.rows[key.lower()][2])

    def columns(self) -> dict[str, str]:
        """The other tags as manifest cells: Magnification, AccVoltage, Defocus, ``tag_<key>``,
        each with the file's own digits (:func:`tag_cell`)."""
        out = {}
        for name, value, _ in self.rows.values():
            ck = column_key(name)
            if ck in USED_TAGS or not ck:
                continue
            out[TAG_COLUMNS.get(ck, f"tag_{ck}")] = tag_cell(value)
        return out

    def written(self, key: str) -> str:
        """The value of ``key`` as the file writes it (a decimal comma made a point)."""
        return tag_cell(self.rows[key.lower()][1])


def read_tags(path: Path) -> Tags:
    """Read a release tag file: ``;``-separated ``key;value`` rows (blank rows ignored)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"unreadable ({exc.strerror})", path) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # written by the microscope's Windows software
    rows: dict[str, tuple[str, str, int]] = {}
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";")
    for row in reader:
        while row and not row[-1].strip():
            row = row[:-1]
        if not row:
            continue
        key = row[0].strip()
        if not key:
            raise DatasetError("a row without a key (expected key;value)", path, reader.line_num)
        rows.setdefault(key.lower(), (key, ";".join(row[1:]).strip(), reader.line_num))
    return Tags(path, rows)


# ---------------------------------------------------------------------------- split table

@dataclass(frozen=True)
class Listed:
    """One crop of a split table (e.g. protocol_A_official.csv)."""

    split: str
    source: str
    line: int
    date: str = ""
    magnification: str = ""


@dataclass
class SplitTable:
    """A crop table: by crop ``(split, class, file name)`` and by source ``(class, image stem)``."""

    path: Path
    by_crop: dict[tuple[str, str, str], Listed]
    by_source: dict[tuple[str, str], Listed | None]

    def lookup(self, split: str, label: str, name: str, source_stem: str) -> Listed | None:
        hit = self.by_crop.get((split, label.lower(), name.lower()))
        return hit or self.by_source.get((label.lower(), source_stem.lower()))


def read_split_table(path: Path, tally: Tally) -> SplitTable:
    """Read a table of the release's crops (``filepath`` or ``filename`` + ``class_name``,
    ``split``, ``raw_source_id``; optionally ``G09_Date_Magnification``)."""
    df = read_table(path)
    cols = df.columns
    fcol = find_column(cols, "filepath", "path")
    ncol = find_column(cols, "filename", "file")
    ccol = find_column(cols, "class_name", "class", "label")
    scol = find_column(cols, "split")
    rcol = find_column(cols, "raw_source_id", "g14_rawsource", "raw_source", "source")
    dcol = find_column(cols, "g09_date_magnification", "date_magnification")
    if scol is None or rcol is None or (fcol is None and (ncol is None or ccol is None)):
        raise DatasetError("a split table needs 'split', 'raw_source_id' and 'filepath' (or "
                           f"'filename' and 'class_name'); columns: {', '.join(cols)}", path, 1)
    by_crop: dict[tuple[str, str, str], Listed] = {}
    by_source: dict[tuple[str, str], Listed | None] = {}
    def column(c: str | None) -> list[str]:
        return [str(v).strip() for v in df[c]] if c else [""] * len(df)

    for line, split_text, path_text, name_text, label_text, source, dm in zip(
            df.index, column(scol), column(fcol), column(ncol), column(ccol), column(rcol), column(dcol)):
        split = split_name(split_text)
        if split is None:
            tally.bad(path, "bad split table", f"split '{split_text}' is not train/validation/test", int(line))
            continue
        parts = [p for p in re.split(r"[\\/]", path_text) if p]
        name = parts[-1] if parts else name_text
        label = label_text or (parts[-2] if len(parts) >= 2 else "")
        folder = split_name(parts[-3]) if len(parts) >= 3 else None
        date, _, mag = dm.partition("|")
        entry = Listed(split, source, int(line), date.strip(), mag.strip())
        by_crop[(folder or split, label.lower(), name.lower())] = entry
        src = [p for p in re.split(r"[\\/]", source) if p]
        key = ((src[-2] if len(src) >= 2 else label).lower(), Path(src[-1]).stem.lower() if src else "")
        prev = by_source.get(key, entry)
        by_source[key] = entry if prev is not None and prev.split == split else None  # None: ambiguous
    return SplitTable(path, by_crop, by_source)


# ---------------------------------------------------------------------------- the walk

def _visible(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda q: natural_key(q.name))


@dataclass
class Walk:
    """Class folders ``(split, split folder's name, folder)`` and files above them."""

    has_splits: bool
    class_dirs: list[tuple[str, str, Path]]
    above: list[Path]


def walk(root: Path) -> Walk:
    """``[<split>/]<Class>/`` under ``root``; a mix of split and class folders is an error."""
    subdirs = [d for d in _visible(root) if d.is_dir()]
    split_dirs = [d for d in subdirs if split_name(d.name)]
    if split_dirs and len(split_dirs) != len(subdirs):
        other = next(d for d in subdirs if d not in split_dirs)
        raise DatasetError("mixes split folders (train/validation/test) and class folders", other)
    tops = [(split_name(d.name) or "", d.name, d) for d in split_dirs] or [("", "", root)]
    above = [p for p in _visible(root) if not p.is_dir()] if split_dirs else []
    class_dirs = []
    for split, name, top in tops:
        for d in _visible(top):
            if d.is_dir():
                class_dirs.append((split, name, d))
            else:
                above.append(d)
    return Walk(bool(split_dirs), class_dirs, above)


def _has_folder(root: Path, name: str) -> bool:
    return any(d.is_dir() and d.name.lower() == name.lower() for d in root.iterdir())


def release_part(root: Path, layout: str) -> tuple[Path, str]:
    """The folder to read and its layout, for DIR being the release's root (else DIR as given)."""
    parts = {d.name.lower(): d for d in root.iterdir() if d.is_dir()}
    raw, crops = parts.get(RAW_PART.lower()), parts.get(CROPS_PART.lower())
    if raw is None and crops is None:
        return root, layout
    if layout == "annotated":
        raise ParameterError("layout", f"{root} is the TEM release's root ({RAW_PART}, {CROPS_PART}): "
                             "give raw or crops")
    if layout == "crops" or (layout == "auto" and raw is None):
        if crops is None:
            raise DatasetError(f"no {CROPS_PART} folder in the release", root)
        return crops, "crops"
    if raw is None:
        raise DatasetError(f"no {RAW_PART} folder in the release", root)
    return raw, "raw"


def detect_layout(w: Walk, pixel_sizes: Path | None) -> str:
    """``raw`` (particle_positions/, tags/), ``annotated`` (annotations, pixel tables) or ``crops``."""
    if any((d / PARTICLE_DIR).is_dir() or (d / TAG_DIR).is_dir() for _, _, d in w.class_dirs):
        return "raw"
    if pixel_sizes is not None or any(p.name.lower() in PIXEL_TABLES for p in w.above):
        return "annotated"
    for _, _, d in w.class_dirs:
        if any(p.is_file() and (p.suffix.lower() in ANNOTATION_SUFFIXES) for p in d.iterdir()):
            return "annotated"
    return "crops"


def ingest_tem(root: str | Path, *, skip_bad: bool = False, verify: bool = True,
               pixel_sizes: Path | None = None, default_pixel_size: float | None = None,
               layout: str = "auto", split_table: Path | None = None) -> Ingested:
    """Read the TEM virus dataset: raw images with particle and tag files, or crops.

    Parameters
    ----------
    root : path
        The release's root (``context_virus_RAW`` is read; ``layout="crops"`` reads
        ``context_virus_1nm_256x256``), one of those folders, a crops folder, or covtool's
        annotated layout.
    layout : {"auto", "raw", "crops", "annotated"}
        ``auto`` tells them apart by their files (docs/ingest.md).
    pixel_sizes : path, optional
        Annotated layout: a table ``image,pixel_size_nm`` (else found in DIR, split or class folders).
    default_pixel_size : float, optional
        The pixel size (nm) of images that carry none. Raw/annotated: images without a tag file
        or table row. Crops: their pixel size (default 1 nm, the release's).
    split_table : path, optional
        Crops: a table of the release's crops (``protocol_A_official.csv``) giving each crop's
        official split, its source image (the ``group``) and date and magnification.
    verify : bool
        Decode each image (checking particles lie inside, tag sizes agree, crop centres).
    skip_bad
        As for the other readers.

    Returns
    -------
    Ingested
        Raw: ``id, path, label, group, split, source, annotation, pixel_size_nm, particles`` and
        the tag columns; crops: ``id, path, label, group, split, source, pixel_size_nm,
        center_x, center_y``; annotated: ``id, path, label, group, split, annotation,
        pixel_size_nm, particles``. ``split`` is left out when no folder or table gives one.
    """
    root = Path(root)
    if layout not in LAYOUTS:
        raise ParameterError("layout", f"must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if default_pixel_size is not None and not (0 < default_pixel_size < float("inf")):
        raise ParameterError("default_pixel_size", f"must be a positive number of nm, got {default_pixel_size}")
    root = dataset_folder(root)
    folder, chosen = release_part(root, layout)
    tally = Tally(skip_bad)
    if layout == "auto" and chosen == "raw" and folder != root and _has_folder(root, CROPS_PART):
        tally.warn(f"{root} holds both parts of the release: read {RAW_PART} (the raw images); "
                   f"the crops layout reads {CROPS_PART}")
    layout = chosen
    w = walk(folder)
    if not w.class_dirs:
        raise DatasetError("no class folders (one folder of images per virus class)", folder)
    if layout == "auto":
        layout = detect_layout(w, pixel_sizes)
    if split_table is not None and layout != "crops":
        raise DatasetError(f"a split table names crops; this is the {layout} layout, whose split "
                           "folders are the split", split_table)
    if layout == "raw":
        rows, columns = _raw_rows(w, tally, verify, default_pixel_size), RAW_COLUMNS
    elif layout == "crops":
        table = read_split_table(Path(split_table), tally) if split_table is not None else None
        nm = CROP_PIXEL_NM if default_pixel_size is None else default_pixel_size
        rows, columns = _crop_rows(w, tally, verify, nm, table), CROP_COLUMNS
    else:
        rows, columns = _annotated_rows(w, tally, verify, pixel_sizes, default_pixel_size), COLUMNS
    out = tally.result(rows, columns)
    if not (out.items["split"].fillna("") != "").any():
        out.items = out.items.drop(columns=["split"])
    return out


def _images_above(w: Walk, tally: Tally, allowed: Iterable[Path] = ()) -> None:
    """Images above the class folders are misplaced; other files there (readme, licence) are not items."""
    keep = {p.resolve() for p in allowed}
    for p in w.above:
        if is_image_file(p) and p.resolve() not in keep:
            tally.bad(p, "unknown file", "an image outside a class folder")


def _source(split_folder: str, label: str, name: str) -> str:
    return "/".join(x for x in (split_folder, label, name) if x)


# ---------------------------------------------------------------------------- raw part

def _named(folder: Path, end: str, tally: Tally, what: str) -> dict[str, Path]:
    """``{key lower-case: file}`` of the files ``<key><end>`` in ``folder`` (others are unknown)."""
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for p in _visible(folder):
        if p.is_file() and p.name.lower().endswith(end) and len(p.name) > len(end):
            out[p.name[:-len(end)].lower()] = p
        else:
            tally.bad(p, "unknown file", f"{what} holds only <image>{end} files")
    return out


def _raw_rows(w: Walk, tally: Tally, verify: bool, pixel_size_nm: float | None) -> list[dict]:
    _images_above(w, tally)
    rows: list[dict] = []
    for split, split_folder, folder in w.class_dirs:
        images: dict[str, Path] = {}
        for p in _visible(folder):
            if p.is_dir():
                if p.name not in (PARTICLE_DIR, TAG_DIR):
                    tally.bad(p, "unknown file", f"a class folder holds images, {PARTICLE_DIR}/ and {TAG_DIR}/")
            elif not is_image_file(p):
                tally.bad(p, "unknown file", "neither an image nor particle_positions/ or tags/")
            elif p.stem.lower() in images:
                tally.bad(p, "unknown file", f"a second image named {p.stem} (its particle file would be ambiguous)")
            else:
                images[p.stem.lower()] = p
        particles_of = _named(folder / PARTICLE_DIR, PARTICLE_END, tally, f"{PARTICLE_DIR}/")
        tags_of = _named(folder / TAG_DIR, TAG_END, tally, f"{TAG_DIR}/")
        names = {p.name.lower(): s for s, p in images.items()}
        for key, p in particles_of.items():
            if key not in images:
                tally.bad(p, "no image", f"no image {p.name[:-len(PARTICLE_END)]}.tif for this particle file")
        for key, p in tags_of.items():
            if key not in names and key not in images:
                tally.bad(p, "no image", f"no image {p.name[:-len(TAG_END)]} for this tag file")
        for stem, image in images.items():
            row = _raw_row(image, particles_of.get(stem),
                           tags_of.get(image.name.lower(), tags_of.get(stem)),
                           tally, verify, pixel_size_nm)
            if row is None:
                continue
            ident = safe_id(split, folder.name, image.stem)
            rows.append({"id": ident, "path": str(image), "label": folder.name, "group": ident,
                         "split": split, "source": _source(split_folder, folder.name, image.name),
                         **row})
    return rows


def _raw_row(image: Path, ann: Path | None, tag: Path | None, tally: Tally, verify: bool,
             pixel_size_nm: float | None) -> dict | None:
    """The annotation, pixel size and tag cells of one raw image, or None (counted) when bad."""
    if ann is None:
        tally.bad(image, "no particle file", f"expected {PARTICLE_DIR}/{image.stem}{PARTICLE_END}")
        return None
    if tag is None and pixel_size_nm is None:
        tally.bad(image, "no tag file", f"expected {TAG_DIR}/{image.name}{TAG_END} (or give a default pixel size)")
        return None
    tags = None
    try:
        if tag is not None:
            tags = read_tags(tag)
            nm = tags.pixel_size_nm()
        else:
            nm = pixel_size_nm
    except DatasetError as exc:
        tally.bad(exc.path or tag, "bad tag file", exc.message, exc.line)
        return None
    try:
        particles = read_annotations(ann)
        if verify:
            shape = read_image(image).shape
            check_inside(particles, shape, str(ann))
            if tags is not None:
                tags.check_size(shape)
    except AnnotationError as exc:
        tally.bad(exc.path or ann, "bad particle file", exc.message, exc.line)
        return None
    except ImageError as exc:
        tally.bad(image, "unreadable image", exc.message)
        return None
    except DatasetError as exc:
        tally.bad(exc.path or tag, "bad tag file", exc.message, exc.line)
        return None
    return {"annotation": str(ann), "pixel_size_nm": nm, "particles": len(particles),
            **(tags.columns() if tags is not None else {})}


# ---------------------------------------------------------------------------- crops

def _crop_rows(w: Walk, tally: Tally, verify: bool, pixel_size_nm: float,
               table: SplitTable | None) -> list[dict]:
    _images_above(w, tally)
    rows: list[dict] = []
    unlisted: list[Path] = []
    for split, split_folder, folder in w.class_dirs:
        seen: set[str] = set()
        for p in _visible(folder):
            if p.is_dir():
                tally.bad(p, "unknown file", "a folder inside a class folder of crops")
                continue
            if not is_image_file(p):
                tally.bad(p, "unknown file", "not an image (a crops folder holds only images)")
                continue
            m = CROP_NAME.match(p.stem)
            if m is None:
                tally.bad(p, "unknown file", "not a crop name <source image>_<k>")
                continue
            if p.stem.lower() in seen:
                tally.bad(p, "unknown file", f"a second crop named {p.stem}")
                continue
            seen.add(p.stem.lower())
            row = {"split": split, "source": _source(split_folder, folder.name, m["source"])}
            hit = table.lookup(split, folder.name, p.name, m["source"]) if table is not None else None
            if hit is not None:
                if split and hit.split != split:
                    tally.bad(p, "split disagrees", f"in a {split_folder} folder, but {table.path.name}:"
                              f"{hit.line} puts it in {hit.split}")
                    continue
                row.update(split=hit.split, source=hit.source, date=hit.date,
                           magnification=hit.magnification)
            elif table is not None:
                unlisted.append(p)
            centre = CROP_SIZE // 2, CROP_SIZE // 2
            if verify:
                try:
                    h, w_ = read_image(p).shape[:2]
                except ImageError as exc:
                    tally.bad(p, "unreadable image", exc.message)
                    continue
                centre = w_ // 2, h // 2
            rows.append({"id": safe_id(split, folder.name, p.stem), "path": str(p), "label": folder.name,
                         "group": row["source"], **row, "pixel_size_nm": pixel_size_nm,
                         "center_x": centre[0], "center_y": centre[1]})
    if unlisted:
        tally.warn(f"{len(unlisted)} crop(s) not in {table.path}: their folder gives the split (if "
                   f"any) and their name the source image, e.g. {unlisted[0]}")
    return rows


# ---------------------------------------------------------------------------- annotated layout

def read_pixel_sizes(path: Path, tally: Tally) -> dict[str, float]:
    """``{image name or stem, lower-case: nm per pixel}`` from a pixel-size table."""
    df = read_table(path)
    icol, scol = find_column(df.columns, *IMAGE_COLUMNS), find_column(df.columns, *SIZE_COLUMNS)
    if icol is None or scol is None:
        raise DatasetError(f"a pixel-size table needs an image column ({', '.join(IMAGE_COLUMNS)}) and a "
                           f"size column ({', '.join(SIZE_COLUMNS)}); columns: {', '.join(df.columns)}", path, 1)
    out = {}
    for idx, name, value in zip(df.index, df[icol], df[scol]):
        name = str(name).strip()
        try:
            nm = float(value)
        except ValueError:
            tally.bad(path, "bad pixel size", f"'{value}' is not a number", idx)
            continue
        if not (math.isfinite(nm) and nm > 0):
            tally.bad(path, "bad pixel size", f"{value} is not a positive size in nm", idx)
            continue
        out[name.lower()] = nm
        out[Path(name).stem.lower()] = nm
    return out


def _is_table(p: Path) -> bool:
    return p.is_file() and p.name.lower() in PIXEL_TABLES


def _annotated_rows(w: Walk, tally: Tally, verify: bool, pixel_sizes: Path | None,
                    pixel_size_nm: float | None) -> list[dict]:
    tables = [pixel_sizes] if pixel_sizes else [p for p in w.above if _is_table(p)]
    if pixel_sizes is None:
        tables += [p for _, _, d in w.class_dirs for p in _visible(d) if _is_table(p)]
    _images_above(w, tally)
    sizes: dict[str, float] = {}
    for t in tables:
        sizes.update(read_pixel_sizes(t, tally))
    table_names = {t.resolve() for t in tables}
    table_names |= {p.resolve() for _, _, d in w.class_dirs for p in _visible(d) if _is_table(p)}
    rows: list[dict] = []
    for split, _, folder in w.class_dirs:
        files = _visible(folder)
        stems = {}
        for p in files:
            if is_image_file(p) and p.is_file():
                stems.setdefault(p.stem.lower(), p)
        for p in files:
            if p.resolve() in table_names:
                continue
            if p.is_dir():
                tally.bad(p, "unknown file", "a folder inside a class folder")
                continue
            if p.suffix.lower() in ANNOTATION_SUFFIXES:
                if p.stem.lower() not in stems:
                    tally.bad(p, "unknown file", "an annotation without an image of the same name")
                continue
            if not is_image_file(p):
                tally.bad(p, "unknown file", "neither an image nor an annotation")
                continue
            if stems[p.stem.lower()] != p:
                tally.bad(p, "unknown file", f"a second image named {p.stem} (annotation would be ambiguous)")
                continue
            ann = next((p.with_suffix(s) for s in ANNOTATION_SUFFIXES if p.with_suffix(s).is_file()), None)
            if ann is None:
                tally.bad(p, "no annotation", f"no {p.stem}.txt or {p.stem}.csv beside it")
                continue
            nm = sizes.get(p.name.lower(), sizes.get(p.stem.lower(), pixel_size_nm))
            if nm is None:
                tally.bad(p, "no pixel size", "not in a pixel-size table (give a default pixel size)")
                continue
            try:
                particles = read_annotations(ann)
                if verify:
                    check_inside(particles, read_image(p).shape, str(ann))
            except AnnotationError as exc:
                tally.bad(exc.path or ann, "bad annotation", exc.message, exc.line)
                continue
            except ImageError as exc:
                tally.bad(p, "unreadable image", exc.message)
                continue
            ident = safe_id(split, folder.name, p.stem)
            rows.append({"id": ident, "path": str(p), "label": folder.name, "group": ident,
                         "split": split, "annotation": str(ann), "pixel_size_nm": nm,
                         "particles": len(particles)})
    return rows
