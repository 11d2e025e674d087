"""Synthetic chest CT series in COVID-CTset's form: 16-bit TIFF slices, 512x512, stored units.

Stored values follow the dataset (about HU + 1024, 0..~5000): air outside the body ~0, lungs
~50..200 (dark, below the selection's dark level of 300), soft tissue ~1000, bone ~1600..2200.
Along a series the lungs open from nothing, are widest in the middle and close again, so the
first and last slices are closed-lung slices the selection algorithm should discard. COVID
patients get ground-glass opacities: 3-D Gaussian blobs inside the lungs that raise the lung
values to ~450..750. Body size, position, lung size and noise vary per patient.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from covtool.core.imageio import write_image

SIZE = 512
#: a slice is labelled covid when at least this many pixels belong to a lesion
LESION_VISIBLE_PIXELS = 50


@dataclass(frozen=True)
class PatientSpec:
    """What a generated patient looks like (drawn from the patient's seed)."""

    n_slices: int
    covid: bool
    cx: float
    cy: float
    body_ax: float
    body_ay: float
    lung_ax: float
    lung_ay: float
    lung_gap: float
    closed_fraction: float   # share of the series at each end where the lungs are shut
    noise: float
    lesions: tuple[tuple[float, float, float, float, float], ...]  # (x, y, z, radius, strength)


def draw_patient(rng: np.random.Generator, n_slices: int, covid: bool) -> PatientSpec:
    cx = SIZE / 2 + rng.uniform(-12, 12)
    cy = SIZE / 2 + 20 + rng.uniform(-10, 10)
    lung_ax = rng.uniform(58, 72)
    lung_ay = rng.uniform(95, 115)
    lung_gap = rng.uniform(78, 92)
    closed = rng.uniform(0.10, 0.18)
    lesions = []
    if covid:
        for _ in range(int(rng.integers(2, 6))):
            side = rng.choice([-1, 1])
            x = cx + side * lung_gap + rng.uniform(-0.5, 0.5) * lung_ax
            y = cy + rng.uniform(-0.5, 0.5) * lung_ay
            z = rng.uniform(0.3, 0.7) * n_slices
            lesions.append((x, y, z, rng.uniform(14, 30), rng.uniform(350, 550)))
    return PatientSpec(n_slices, covid, cx, cy, rng.uniform(200, 228), rng.uniform(150, 172),
                       lung_ax, lung_ay, lung_gap, closed, rng.uniform(12, 25), tuple(lesions))


def lung_openness(spec: PatientSpec, k: int) -> float:
    """0 (closed) .. 1 (widest) for slice k (0-based) of the series."""
    t = (k + 0.5) / spec.n_slices
    c = spec.closed_fraction
    if t <= c or t >= 1 - c:
        return 0.0
    u = (t - c) / (1 - 2 * c)
    return float(np.sin(np.pi * u) ** 0.5)


def render_slice(spec: PatientSpec, k: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One slice (512, 512) uint16 and its truth: ``lung_open`` and ``lesion_pixels``."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    img = np.full((SIZE, SIZE), 10.0, np.float32)
    body = ((xx - spec.cx) / spec.body_ax) ** 2 + ((yy - spec.cy) / spec.body_ay) ** 2 <= 1
    img[body] = 1000.0 + 40.0 * np.sin(xx[body] / 37.0) * np.cos(yy[body] / 29.0)
    # spine and ribs-like ring
    spine = (xx - spec.cx) ** 2 + (yy - (spec.cy + spec.body_ay * 0.72)) ** 2 <= 22 ** 2
    img[spine] = 1900.0
    ring = np.abs(np.sqrt(((xx - spec.cx) / (spec.body_ax - 12)) ** 2 + ((yy - spec.cy) / (spec.body_ay - 12)) ** 2) - 1) < 0.03
    img[ring & body] = 1600.0
    openness = lung_openness(spec, k)
    lung = np.zeros((SIZE, SIZE), bool)
    lesion_pixels = 0
    if openness > 0:
        ax, ay = spec.lung_ax * openness, spec.lung_ay * (0.35 + 0.65 * openness)
        for side in (-1, 1):
            lx = spec.cx + side * spec.lung_gap
            lung |= ((xx - lx) / ax) ** 2 + ((yy - spec.cy) / ay) ** 2 <= 1
        img[lung] = 120.0 + 30.0 * np.sin(xx[lung] / 11.0 + yy[lung] / 13.0)
        # vessels: small bright dots in the lungs
        for _ in range(int(12 * openness)):
            vx = spec.cx + rng.choice([-1, 1]) * spec.lung_gap + rng.uniform(-0.7, 0.7) * ax
            vy = spec.cy + rng.uniform(-0.7, 0.7) * ay
            dot = (xx - vx) ** 2 + (yy - vy) ** 2 <= rng.uniform(2, 5) ** 2
            img[dot & lung] = 900.0
        for x, y, z, r, strength in spec.lesions:
            dz = (k - z) / max(r / 6.0, 1.0)
            if abs(dz) > 2.5:
                continue
            blob = np.exp(-(((xx - x) ** 2 + (yy - y) ** 2) / (2 * r * r)) - dz * dz / 2)
            add = strength * blob * lung
            img += add
            lesion_pixels += int(np.count_nonzero(add > strength * 0.3))
    img += rng.normal(0.0, spec.noise, img.shape).astype(np.float32)
    out = np.clip(np.rint(img), 0, 65535).astype(np.uint16)
    return out, {"lung_open": openness, "lesion_pixels": lesion_pixels}


def patient_series(spec: PatientSpec, seed: int) -> Iterator[tuple[np.ndarray, dict]]:
    """Stream the slices of one series (one in memory at a time)."""
    rng = np.random.default_rng(seed)
    for k in range(spec.n_slices):
        yield render_slice(spec, k, rng)


def write_ct_dataset(root: str | os.PathLike, n_patients: int = 6, slices: tuple[int, int] = (30, 50),
                     covid_fraction: float = 0.5, series: tuple[str, ...] = ("SR_3",),
                     seed: int = 0, force: bool = False) -> pd.DataFrame:
    """Write patients as ``root/<patient>/<series>/<patient>_<series>_IM00001.tif``.

    Returns the ground truth, one row per slice: ``id, path, group, series, slice, label,
    patient_label, lung_open, lesion_pixels``; also written as ``root/truth.csv``. ``label`` is
    the slice's (``covid`` where a lesion is visible, else ``normal``), ``patient_label`` the
    patient's; ``root/patients.csv`` lists ``group, label`` per patient. Patients alternate COVID and
    normal so that any ``n_patients >= 2`` has both classes (``covid_fraction`` sets the share).
    """
    from covtool.core.manifest import write_manifest

    root = Path(root)
    rows = []
    n_covid = int(round(n_patients * covid_fraction))
    for i in range(n_patients):
        rng = np.random.default_rng([seed, i])
        covid = (i % 2 == 0) if n_patients > 1 and covid_fraction == 0.5 else i < n_covid
        pid = f"patient{i + 1:03d}"
        label = "covid" if covid else "normal"
        for s_i, sname in enumerate(series):
            n = int(rng.integers(slices[0], slices[1] + 1))
            spec = draw_patient(rng, n, covid)
            for k, (img, truth) in enumerate(patient_series(spec, seed * 1000 + i * 10 + s_i)):
                path = root / pid / sname / f"{pid}_{sname}_IM{k + 1:05d}.tif"
                write_image(path, img, force=force)
                # slice-level label as COVID-CTset's: covid where an infection is visible
                visible = truth["lesion_pixels"] >= LESION_VISIBLE_PIXELS
                rows.append({"id": f"{pid}_{sname}_IM{k + 1:05d}", "path": str(path), "group": pid,
                             "series": sname, "slice": k + 1,
                             "label": "covid" if visible else "normal", "patient_label": label,
                             "lung_open": round(truth["lung_open"], 4),
                             "lesion_pixels": truth["lesion_pixels"]})
    truth = pd.DataFrame(rows)
    write_manifest(truth, root / "truth.csv", force=force)
    patients = truth.groupby("group", sort=False)["patient_label"].first().reset_index()
    write_manifest(patients.rename(columns={"patient_label": "label"}), root / "patients.csv", force=force)
    return truth


#: the per-patient split cycle of :func:`write_covid_ct_layout` (within each class)
COVID_CT_SPLITS = ("train", "train", "val", "test")


def write_covid_ct_layout(root: str | os.PathLike, n_patients: int = 12, per_patient: int = 4,
                          size: int = 128, slices: tuple[int, int] = (24, 30), seed: int = 0,
                          force: bool = False) -> pd.DataFrame:
    """Write generated CT slices in COVID-CT's release layout (for ``covtool ingest covid-ct``).

    ``root/Images-processed/CT_COVID|CT_NonCOVID/<patient>-<k>.png`` (8-bit, lung window
    0..1600 stored units, ``size`` x ``size``), ``root/Data-split/COVID|NonCOVID/<split>CT_<class>.txt``
    lists (patients cycle through :data:`COVID_CT_SPLITS` within each class) and
    ``root/COVID-CT-MetaInfo.csv`` (``File name, Patient ID``). COVID images are slices with a
    visible lesion, non-COVID ones open-lung slices of normal patients: up to ``per_patient`` each,
    evenly spaced. Returns one row per image: ``name, label, group, split``.
    """
    import cv2

    from covtool.core.atomic import atomic_write_text

    root = Path(root)
    rows = []
    seen = {"covid": 0, "normal": 0}
    for i in range(n_patients):
        rng = np.random.default_rng([seed, i])
        covid = i % 2 == 0
        label = "covid" if covid else "normal"
        spec = draw_patient(rng, int(rng.integers(slices[0], slices[1] + 1)), covid)
        keep = []
        for k, (img, truth) in enumerate(patient_series(spec, seed * 1000 + i)):
            if (truth["lesion_pixels"] >= LESION_VISIBLE_PIXELS) if covid else truth["lung_open"] > 0.5:
                keep.append((k, img))
        pick = [keep[j] for j in np.linspace(0, len(keep) - 1, min(per_patient, len(keep))).astype(int)]
        split = COVID_CT_SPLITS[seen[label] % len(COVID_CT_SPLITS)]
        seen[label] += 1
        folder = "CT_COVID" if covid else "CT_NonCOVID"
        for k, img in dict(pick).items():
            shown = np.clip(img.astype(np.float32) / 1600.0 * 255.0, 0, 255).astype(np.uint8)
            shown = cv2.resize(shown, (size, size), interpolation=cv2.INTER_AREA)
            name = f"patient{i + 1:03d}-{k + 1}.png"
            write_image(root / "Images-processed" / folder / name, shown, force=force)
            rows.append({"name": name, "label": label, "group": f"patient{i + 1:03d}", "split": split})
    table = pd.DataFrame(rows)
    for label, cls in (("covid", "COVID"), ("normal", "NonCOVID")):
        for split in ("train", "val", "test"):
            names = table[(table["label"] == label) & (table["split"] == split)]["name"]
            atomic_write_text(root / "Data-split" / cls / f"{split}CT_{cls}.txt",
                              "".join(f"{n}\n" for n in names), force=force)
    covid_rows = table[table["label"] == "covid"]
    atomic_write_text(root / "COVID-CT-MetaInfo.csv", "File name,Patient ID\n" + "".join(
        f"{n},{g}\n" for n, g in zip(covid_rows["name"], covid_rows["group"])), force=force)
    return table
