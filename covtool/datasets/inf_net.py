"""Lesion-masked CT slices in Inf-Net's layout (Fan et al. 2020, DengPingFan/Inf-Net).

Expected under DIR (docs/ingest.md lists every assumption)::

    [TrainingSet/]LungInfection-Train/Doctor-label/Imgs/<n>.jpg    CT slices (8-bit grey)
    [TrainingSet/]LungInfection-Train/Doctor-label/GT/<n>.png      the doctors' infection masks
    [TestingSet/LungInfection-Test/{Imgs,GT}/]                     read too, where present

Inf-Net's labelled slices are 50 of the 100 axial slices of the "COVID-19 CT segmentation
dataset" (medicalsegmentation.com, the Italian Society of Radiology's cases): slices of more than
40 COVID-19 patients, every one COVID-positive, published without a patient id. A slice and its
mask share their file's stem. Each row: ``path`` (the slice), ``mask`` (its infection mask: the
same size, non-zero = lesion), ``label`` (``covid``), ``group``, ``split`` and ``source`` (the
file's path inside the release).

``group``: the names (``0``..``67``, indices into the 100 slices) say nothing of the patient, and
several slices may be of one patient, so every slice of a folder is put in one group
(``inf-net``), which a group-level split keeps together; no patient-level claim can be made.
"""

from __future__ import annotations

from pathlib import Path

from covtool.core.imageio import is_image_file, read_image
from covtool.core.naming import natural_key, safe_id
from covtool.datasets.common import DatasetError, Ingested, Tally, dataset_folder

#: folders holding an ``Imgs``/``GT`` pair of binary infection masks, as released
PAIR_FOLDERS = ("Doctor-label", "LungInfection-Test")
COLUMNS = ["id", "path", "label", "group", "split", "source", "mask"]
GROUP = "inf-net"


def find_pairs(root: Path) -> list[Path]:
    """The folders under ``root`` (or ``root`` itself) holding ``Imgs`` and ``GT`` with binary
    infection masks: ``Doctor-label`` (training) and ``LungInfection-Test``; the multi-class masks
    (``MultiClassInfection-*``: 1 ground glass, 2 consolidation) and Inf-Net's pseudo labels are
    not doctors' binary masks and are left out."""
    candidates = [root] + sorted(p for p in root.rglob("*") if p.is_dir() and p.name in PAIR_FOLDERS)
    found = [p for p in candidates if (p / "Imgs").is_dir() and (p / "GT").is_dir()
             and (p == root or p.name in PAIR_FOLDERS)]
    if not found:
        raise DatasetError("no Imgs/GT folder pair of infection masks (LungInfection-Train/"
                           "Doctor-label/{Imgs,GT})", root)
    return found


def mask_size_error(image: Path, mask: Path) -> str | None:
    """None where the mask has its image's height and width, else what differs (one line)."""
    img, m = read_image(image), read_image(mask)
    if img.shape[:2] == m.shape[:2]:
        return None
    return f"mask is {m.shape[1]}x{m.shape[0]}, its image {image} is {img.shape[1]}x{img.shape[0]}"


def ingest_inf_net(root: str | Path, *, skip_bad: bool = False, verify: bool = True,
                   label: str = "covid", split: str = "train") -> Ingested:
    """Read Inf-Net's lesion-masked slices into manifest rows.

    Parameters
    ----------
    root : path
        The release's folder (or any folder holding ``Imgs`` and ``GT``).
    skip_bad : bool
        Count and skip bad files instead of raising :class:`DatasetError`.
    verify : bool
        Decode every slice and mask once: a damaged file, or a mask of another size than its
        slice, is found here.
    label, split : str
        Written on every row (the slices are all COVID-19; by default training rows, to join
        COVID-CT's training images as the paper joined COVID-Seg's).

    Returns
    -------
    Ingested
        Columns ``id, path, label, group, split, source, mask``.
    """
    from covtool.core.errors import CovtoolError

    root = dataset_folder(root)
    tally = Tally(skip_bad)
    rows: list[dict] = []
    for pair in find_pairs(root):
        masks = {p.stem: p for p in (pair / "GT").iterdir() if is_image_file(p)}
        prefix = ["test"] if pair.name == "LungInfection-Test" else []
        used: set[str] = set()
        seen: set[str] = set()
        for p in sorted((pair / "Imgs").iterdir(), key=lambda q: natural_key(q.name)):
            if p.name.startswith("."):
                continue
            if p.is_dir() or not is_image_file(p):
                tally.bad(p, "unknown file", "not an image")
                continue
            seen.add(p.stem)
            mask = masks.get(p.stem)
            if mask is None:
                tally.bad(p, "no mask", f"no {pair / 'GT'}/{p.stem}.* beside it")
                continue
            used.add(p.stem)
            if verify:
                try:
                    wrong = mask_size_error(p, mask)
                except CovtoolError as exc:
                    tally.bad(exc.path or p, "unreadable image", exc.message)
                    continue
                if wrong:
                    tally.bad(mask, "mask size differs", wrong)
                    continue
            rows.append({"id": safe_id("inf-net", *prefix, p.stem), "path": str(p), "label": label,
                         "group": GROUP, "split": split, "source": str(p.relative_to(root)),
                         "mask": str(mask)})
        for stem in sorted(set(masks) - used, key=natural_key):
            if stem not in seen:
                tally.bad(masks[stem], "mask without image", f"no slice named {stem}.* in {pair / 'Imgs'}")
    return tally.result(rows, COLUMNS)
