"""Synthetic negative-stain TEM virus images with centre annotations and particle masks.

Each image shows particles of one class on a stain-like background: a smooth, uneven stain
(low-frequency noise) with a fine grain, plus shot-like noise. A particle is a signed-distance
shape (round, oval or a curved filament) with a slightly brighter, textured interior and a bright
or dark rim; "spiky" classes carry a fringe of short projections around the rim (like corona or
influenza surface proteins). Sizes are in nanometres and rendered at the image's pixel size, so a
class looks the same after rescaling to 1 nm/px.

Annotations follow the TEM virus benchmark: a round particle gets one (approximate) centre
point; an oval particle a two-point centre line along its long axis; a filament a centre line
with a vertex about every 60-100 nm. Deterministic for a seed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from covtool.core.imageio import write_image
from covtool.em.annotations import Particle, format_annotation_text


@dataclass(frozen=True)
class EMClass:
    """What the particles of one virus class look like (sizes in nm)."""

    name: str
    shape: str                  # "round", "oval" or "filament"
    diameter_nm: float          # diameter (round), short axis (oval), width (filament)
    length_nm: tuple[float, float] = (0.0, 0.0)   # long axis (oval) / length (filament) range
    rim: str = "dark"           # "bright" or "dark"
    spikes: bool = False


DEFAULT_CLASSES: tuple[EMClass, ...] = (
    EMClass("adeno", "round", 80.0, rim="dark"),
    EMClass("corona", "round", 100.0, rim="bright", spikes=True),
    EMClass("orf", "oval", 145.0, (240.0, 280.0), rim="bright"),
    EMClass("ebola", "filament", 80.0, (250.0, 600.0), rim="dark"),
)

#: Representative-split stand-in for the demo: the paper's repeating sequence per class.
SPLIT_CYCLE = ("train", "test", "train", "val", "train")


@dataclass
class EMImage:
    """One generated image.

    Attributes
    ----------
    image : ndarray (H, W), uint16 or uint8
    particles : list of Particle
        The annotation (pixels of ``image``, pixel-centre convention).
    mask : ndarray (H, W), bool
        True on particle pixels (rim and spikes included).
    pixel_size_nm : float
    label : str
    """

    image: np.ndarray
    particles: list[Particle]
    mask: np.ndarray
    pixel_size_nm: float
    label: str


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    import cv2

    noise = rng.standard_normal(shape).astype(np.float32)
    out = cv2.GaussianBlur(noise, (0, 0), sigmaX=max(sigma, 0.5), borderType=cv2.BORDER_REFLECT)
    return out / (out.std() + 1e-6)


def _segment_distance(px: np.ndarray, py: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Distance from points to a polyline ``path`` (k, 2)."""
    d = np.full(px.shape, np.inf, dtype=np.float32)
    for (x0, y0), (x1, y1) in zip(path[:-1], path[1:]):
        vx, vy = x1 - x0, y1 - y0
        L2 = vx * vx + vy * vy
        t = np.clip(((px - x0) * vx + (py - y0) * vy) / max(L2, 1e-9), 0, 1)
        d = np.minimum(d, np.hypot(px - (x0 + t * vx), py - (y0 + t * vy)))
    return d


def _filament_path(rng: np.random.Generator, cx: float, cy: float, length_px: float) -> np.ndarray:
    """A gently curved path of ``length_px`` centred near (cx, cy), sampled finely."""
    n = 40
    angle = rng.uniform(0, 2 * np.pi)
    bend = rng.uniform(-1.2, 1.2) / n
    step = length_px / (n - 1)
    pts = [(0.0, 0.0)]
    for _ in range(n - 1):
        angle += bend + rng.normal(0, 0.02)
        pts.append((pts[-1][0] + step * math.cos(angle), pts[-1][1] + step * math.sin(angle)))
    p = np.asarray(pts)
    return p - p.mean(axis=0) + (cx, cy)


def _polyline_vertices(path: np.ndarray, spacing_px: float) -> np.ndarray:
    """Centre-line vertices about every ``spacing_px`` along ``path`` (ends included)."""
    seg = np.hypot(*np.diff(path, axis=0).T)
    s = np.concatenate([[0], np.cumsum(seg)])
    k = max(3, int(round(s[-1] / spacing_px)) + 1)
    at = np.linspace(0, s[-1], k)
    return np.stack([np.interp(at, s, path[:, 0]), np.interp(at, s, path[:, 1])], axis=1)


def render_em_image(cls: EMClass, shape: tuple[int, int] = (256, 256), pixel_size_nm: float = 1.0,
                    n_particles: int = 4, seed: int | np.random.Generator = 0,
                    dtype: str = "uint16") -> EMImage:
    """Render one image of class ``cls``.

    Parameters
    ----------
    shape : (H, W)
        Image size in pixels.
    pixel_size_nm : float
        nm per pixel; sets how large the particles appear.
    n_particles : int
        Particles to place (centres anywhere inside the image, so some touch the border).
    dtype : "uint16" or "uint8"
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    h, w = int(shape[0]), int(shape[1])
    nm = 1.0 / pixel_size_nm                          # pixels per nm
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    stain = 0.42 + 0.06 * _smooth_noise(rng, (h, w), 40 * nm) + 0.02 * _smooth_noise(rng, (h, w), 1.5 * nm)
    img = stain.copy()
    mask = np.zeros((h, w), bool)
    particles: list[Particle] = []
    rim_sign = 1.0 if cls.rim == "bright" else -1.0
    rim_width = max(3.0 * nm, 0.8)
    for _ in range(n_particles):
        cx, cy = rng.uniform(0, w - 1), rng.uniform(0, h - 1)
        r = 0.5 * cls.diameter_nm * rng.uniform(0.9, 1.1) * nm
        if cls.shape == "round":
            d = np.hypot(xx - cx, yy - cy) - r
            jitter = rng.normal(0, 2.0 * nm, 2)        # centres are approximate
            verts = np.array([[cx, cy]]) + jitter
        elif cls.shape == "oval":
            a = 0.5 * rng.uniform(*cls.length_nm) * nm
            th = rng.uniform(0, np.pi)
            u = (xx - cx) * math.cos(th) + (yy - cy) * math.sin(th)
            v = -(xx - cx) * math.sin(th) + (yy - cy) * math.cos(th)
            d = (np.sqrt((u / a) ** 2 + (v / r) ** 2) - 1.0) * r
            e = a - r                                   # the line spans the long axis' straight part
            verts = np.array([[cx - e * math.cos(th), cy - e * math.sin(th)],
                              [cx + e * math.cos(th), cy + e * math.sin(th)]])
        elif cls.shape == "filament":
            path = _filament_path(rng, cx, cy, rng.uniform(*cls.length_nm) * nm)
            # slide the filament into the image where it fits, so its centre line stays whole
            lo, hi = path.min(axis=0), path.max(axis=0)
            room = np.array([w - 1, h - 1]) - (hi - lo)
            shift = np.where(room >= 0, np.clip(lo, 0, np.maximum(room, 0)) - lo, 0)
            path = path + shift
            d = _segment_distance(xx, yy, path) - r
            verts = _polyline_vertices(path, rng.uniform(60, 100) * nm)
        else:
            raise ValueError(f"unknown particle shape {cls.shape!r}")
        inside = d <= 0
        texture = 0.04 * _smooth_noise(rng, (h, w), 4 * nm)
        img = np.where(inside, 0.58 + texture, img)
        img = img + rim_sign * 0.22 * np.exp(-0.5 * (d / rim_width) ** 2)
        part_mask = d <= rim_width
        if cls.spikes:
            ang = np.arctan2(yy - cy, xx - cx)
            n_sp = 24
            fringe = (d > 0) & (d < 12 * nm) & (np.cos(n_sp * ang) > 0.6)
            img = np.where(fringe, img + rim_sign * 0.12, img)
            part_mask |= fringe
        mask |= part_mask
        if cls.shape == "filament":   # annotate the part of the line inside the image
            verts = verts[(verts[:, 0] >= 0) & (verts[:, 0] <= w - 1) & (verts[:, 1] >= 0) & (verts[:, 1] <= h - 1)]
            if len(verts) == 0:
                continue
        verts = np.clip(verts, [0, 0], [w - 1, h - 1])
        particles.append(Particle(verts, (len(particles) + 1,) * len(verts)))
    img = img + rng.normal(0, 0.025, img.shape).astype(np.float32)
    img = np.clip(img, 0, 1)
    if dtype == "uint8":
        out = np.rint(img * 255).astype(np.uint8)
    elif dtype == "uint16":
        out = np.rint(img * 50000).astype(np.uint16)
    else:
        raise ValueError(f"dtype must be uint8 or uint16, got {dtype!r}")
    return EMImage(out, particles, mask, float(pixel_size_nm), cls.name)


def write_em_dataset(root: str | os.PathLike, n_per_class: int = 2,
                     shape: tuple[int, int] = (256, 256),
                     pixel_sizes: tuple[float, float] = (0.5, 2.0),
                     particles: tuple[int, int] = (2, 5),
                     classes: tuple[EMClass, ...] = DEFAULT_CLASSES, seed: int = 0,
                     masks: bool = False, annotation_format: str = "txt", dtype: str = "uint16",
                     force: bool = False) -> pd.DataFrame:
    """Write ``root/<label>/<id>.tif`` with ``<id>.txt`` (or ``.csv``) annotations and a manifest.

    Pixel sizes are drawn uniformly from ``pixel_sizes`` (rounded to 0.01 nm) per image. Returns
    the manifest (also written as ``root/manifest.csv``): ``id, path, label, split, annotation,
    pixel_size_nm, particles`` and ``mask`` (``<id>_mask.png``, 0/255) with ``masks=True``.
    ``split`` follows the paper's repeating train, test, train, val, train sequence per class.
    """
    from covtool.core.atomic import atomic_write_text
    from covtool.core.manifest import write_manifest

    if annotation_format not in ("txt", "csv"):
        raise ValueError(f"annotation_format must be txt or csv, got {annotation_format!r}")
    root = Path(root)
    rows = []
    for ci, cls in enumerate(classes):
        for i in range(n_per_class):
            rng = np.random.default_rng([seed, ci, i])
            px = round(float(rng.uniform(*pixel_sizes)), 2)
            n = int(rng.integers(particles[0], particles[1] + 1))
            em = render_em_image(cls, shape, px, n, rng, dtype)
            iid = f"{cls.name}_{i + 1:03d}"
            img_path = root / cls.name / f"{iid}.tif"
            ann_path = root / cls.name / f"{iid}.{annotation_format}"
            write_image(img_path, em.image, force=force)
            if annotation_format == "txt":
                text = format_annotation_text(em.particles, f"{iid}: {cls.name}, {px} nm/px")
            else:
                lines = ["object,vertex,x,y"] + [f"{k},{j},{x:.3f},{y:.3f}"
                                                 for k, p in enumerate(em.particles)
                                                 for j, (x, y) in enumerate(p.vertices)]
                text = "\n".join(lines) + "\n"
            atomic_write_text(ann_path, text, force=force)
            row = {"id": iid, "path": str(img_path), "label": cls.name,
                   "split": SPLIT_CYCLE[i % len(SPLIT_CYCLE)], "annotation": str(ann_path),
                   "pixel_size_nm": px, "particles": len(em.particles)}
            if masks:
                mpath = root / cls.name / f"{iid}_mask.png"
                write_image(mpath, em.mask.astype(np.uint8) * 255, force=force)
                row["mask"] = str(mpath)
            rows.append(row)
    df = pd.DataFrame(rows)
    write_manifest(df, root / "manifest.csv", force=force)
    return df
