"""The TEM virus benchmark (Matuszewski & Sintorn 2021): raw images, annotations, pixel sizes.

Expected under DIR (the release's exact file names are not in the paper; docs/ingest.md)::

    [train|validation|test/]<Class>/<image>.tif|png     one folder per virus class
    [train|validation|test/]<Class>/<image>.txt|csv     its particle annotation (same stem)
    pixel_sizes.csv (DIR, split or class folder)        image,pixel_size_nm

Annotations are read with :mod:`covtool.em.annotations` (``x y`` points, ``x1 y1 x2 y2 ...``
centre lines); ``particles`` is the number of annotated objects, the count the paper's
representative split balances.
"""

from __future__ import annotations

import math
from pathlib import Path

from covtool.core.errors import ImageError
from covtool.core.imageio import is_image_file, read_image
from covtool.core.naming import natural_key, safe_id
from covtool.datasets.common import (
    DatasetError,
    Ingested,
    Tally,
    find_column,
    read_table,
    split_name,
)
from covtool.em.annotations import AnnotationError, check_inside, read_annotations

PIXEL_TABLES = ("pixel_sizes.csv", "pixel_size.csv", "pixelsizes.csv", "metadata.csv")
IMAGE_COLUMNS = ("image", "filename", "file", "name")
SIZE_COLUMNS = ("pixel_size_nm", "pixel_size", "pixelsize_nm", "pixelsize", "nm_per_pixel", "nm_px")
ANNOTATION_SUFFIXES = (".txt", ".csv")
COLUMNS = ["id", "path", "label", "group", "split", "annotation", "pixel_size_nm", "particles"]


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


def _tables_in(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.iterdir()) if p.is_file() and p.name.lower() in PIXEL_TABLES]


def ingest_tem(root: str | Path, *, skip_bad: bool = False, verify: bool = True,
               pixel_sizes: Path | None = None, pixel_size_nm: float | None = None) -> Ingested:
    """Read class folders of TEM images with their annotations and pixel sizes.

    Parameters
    ----------
    root : path
        The dataset folder: class folders, or ``train``/``validation``/``test`` folders of them.
    pixel_sizes : path, optional
        A table ``image,pixel_size_nm`` for every image (else found in DIR, split or class folders).
    pixel_size_nm : float, optional
        The pixel size of images no table names.
    verify : bool
        Decode each image and check that its annotation lies inside it.
    skip_bad
        As for the other readers.

    Returns
    -------
    Ingested
        Columns ``id, path, label, group, split, annotation, pixel_size_nm, particles``;
        ``group`` is the image (a TEM image is the unit the paper keeps in one set).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError("no such dataset folder", root)
    tally = Tally(skip_bad)
    sizes: dict[str, float] = {}
    tables = [pixel_sizes] if pixel_sizes else []
    subdirs = [d for d in sorted(root.iterdir(), key=lambda q: natural_key(q.name))
               if d.is_dir() and not d.name.startswith(".")]
    split_dirs = [d for d in subdirs if split_name(d.name)]
    if split_dirs and len(split_dirs) != len(subdirs):
        other = next(d for d in subdirs if d not in split_dirs)
        raise DatasetError("mixes split folders (train/validation/test) and class folders", other)
    tops = split_dirs or [root]
    class_dirs: list[tuple[str, Path]] = []
    if pixel_sizes is None:
        tables += _tables_in(root)
    for top in tops:
        split = split_name(top.name) if split_dirs else ""
        if split_dirs and pixel_sizes is None:
            tables += _tables_in(top)
        for d in sorted(top.iterdir(), key=lambda q: natural_key(q.name)):
            if d.name.startswith("."):
                continue
            if d.is_dir():
                class_dirs.append((split, d))
                if pixel_sizes is None:
                    tables += _tables_in(d)
            elif d.name.lower() not in PIXEL_TABLES and d != pixel_sizes:
                tally.bad(d, "unknown file", "expected class folders here")
    if not class_dirs:
        raise DatasetError("no class folders (one folder of images per virus class)", root)
    for t in tables:
        sizes.update(read_pixel_sizes(t, tally))
    table_names = {t.resolve() for t in tables}
    rows: list[dict] = []
    for split, folder in class_dirs:
        files = [p for p in sorted(folder.iterdir(), key=lambda q: natural_key(q.name)) if not p.name.startswith(".")]
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
                tally.bad(p, "no pixel size", "not in a pixel-size table (give --pixel-size-nm)")
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
    out = tally.result(rows, COLUMNS)
    if not split_dirs:
        out.items = out.items.drop(columns=["split"])
    return out

