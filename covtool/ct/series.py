"""Finding CT series on disk: patients/series/slices, patient/slices, or one series folder.

A folder that holds image files directly is a *series*; its slices are ordered naturally
(``IM2`` before ``IM10``). The series' *group* (patient) is:

* the folder above it, when the series lies two or more levels below the INPUT
  (``patients/P1/SR_2/*.tif`` gives group ``P1``, series ``SR_2``);
* the series folder's own name, when it lies directly inside the INPUT
  (``patients/P1/*.tif`` gives group ``P1``, series ``P1``);
* the folder above it, when the INPUT is itself a series (``covtool select patients/P1/SR_2``).

``group`` overrides all three (``covtool select patients/P1 --group P1``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from covtool.core.errors import CovtoolError
from covtool.core.imageio import is_image_file
from covtool.core.manifest import STDIO, read_manifest
from covtool.core.naming import natural_key, natural_sorted


@dataclass
class Series:
    group: str
    series: str
    folder: Path | None
    slices: list[Path] = field(default_factory=list)
    rows: list | None = None  # manifest row indices, when read from a manifest

    @property
    def key(self) -> tuple[str, str]:
        return self.group, self.series


def find_series(root: str | os.PathLike, group: str | None = None) -> list[Series]:
    """All series under ``root``, in natural order of their folders.

    Leaf folders without any image are reported as empty series (``slices == []``) so the caller
    can name them; hidden folders are ignored.
    """
    root = Path(root)
    if not root.exists():
        raise CovtoolError("no such file or folder", root)
    if not root.is_dir():
        raise CovtoolError("expected a folder of patients, a series folder or a manifest (.csv)", root)
    found: list[Series] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")), key=natural_key)
        folder = Path(dirpath)
        images = [folder / f for f in filenames if is_image_file(f)]
        if not images and dirnames:
            continue
        depth = len(folder.relative_to(root).parts)
        if group is not None:
            g = group
        elif depth == 0:
            g = root.resolve().parent.name
        elif depth == 1:
            g = folder.name
        else:
            g = folder.parent.name
        found.append(Series(g, folder.name if depth else root.resolve().name, folder,
                            natural_sorted(images, key=lambda p: p.name)))
    found.sort(key=lambda s: natural_key(str(s.folder.relative_to(root))))
    return found


def is_manifest_arg(arg: str) -> bool:
    return arg == STDIO or Path(arg).suffix.lower() in {".csv", ".tsv"} and not Path(arg).is_dir()


def series_from_manifest(df: pd.DataFrame) -> list[Series]:
    """Group a slice manifest into series; slices in natural order of their file names."""
    has_series = "series" in df.columns
    groups: dict[tuple[str, str], list] = {}
    for idx, g, p, s in zip(df.index, df["group"], df["path"], df["series"] if has_series else df["group"]):
        groups.setdefault((str(g), str(s) if s != "" else str(g)), []).append((Path(p), idx))
    out = []
    for (g, s), items in groups.items():
        items.sort(key=lambda t: natural_key(t[0].name))
        out.append(Series(g, s, items[0][0].parent, [p for p, _ in items], [i for _, i in items]))
    return out


def collect_series(inputs: list[str], group: str | None) -> tuple[list[Series], pd.DataFrame | None]:
    series: list[Series] = []
    frames = []
    for arg in inputs:
        if is_manifest_arg(arg):
            df = read_manifest(arg, required=["path", "group"])
            offset = sum(len(f) for f in frames)
            df = df.assign(_src=range(offset, offset + len(df)))
            frames.append(df)
            for s in series_from_manifest(df):
                s.rows = [int(df.at[i, "_src"]) for i in s.rows]
                series.append(s)
        else:
            series.extend(find_series(arg, group))
    source = None
    if frames:
        source = pd.concat(frames, ignore_index=True)
    return series, source
