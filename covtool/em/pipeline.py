"""The file side of :mod:`covtool.em.resample` and :mod:`covtool.em.patches`, one image at a time.

Shared by ``covtool rescale`` and ``covtool crop`` (and the benchmark). Each function reads one
source image and its annotation, checks them, writes its outputs atomically and returns what the
manifest needs; nothing of the image is kept afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from covtool.core.errors import ImageError, describe
from covtool.core.imageio import is_colour, read_image, to_gray, write_image
from covtool.em.annotations import (
    Particle,
    check_inside,
    clamp_particles,
    read_annotations,
    scale_particles,
    write_annotations,
)
from covtool.em.patches import DEFAULT_SIZE, PatchCentre, crop_patch, patch_centres, patch_origin
from covtool.em.resample import resample_mask, rescale_to_pixel_size


def load_em_image(path: Path) -> np.ndarray:
    """Read a TEM image; a grey image stored with channels becomes (H, W)."""
    img = read_image(path)
    if img.ndim == 3 and (img.shape[2] == 1 or not is_colour(img)):
        img = to_gray(img)
    if img.dtype == bool:
        img = img.astype(np.uint8)
    return img


def load_particles(annotation: Path, shape: tuple[int, ...]) -> list[Particle]:
    """Read an annotation file and check every vertex lies on an image of ``shape``."""
    particles = read_annotations(annotation)
    check_inside(particles, shape, str(annotation))
    return particles


@dataclass
class RescaleResult:
    scale: float
    width: int
    height: int
    particles: int | None


def rescale_file(image: Path, annotation: Path | None, pixel_size_nm: float, target_nm: float,
                 out_image: Path, out_annotation: Path | None, force: bool = False,
                 mask: Path | None = None, out_mask: Path | None = None) -> RescaleResult:
    """Resample ``image`` to ``target_nm`` per pixel (Lanczos-3) and map its annotation (and
    particle mask) with it."""
    img = load_em_image(image)
    particles = load_particles(annotation, img.shape) if annotation is not None else None
    m = None
    if mask is not None and out_mask is not None:
        m = load_em_image(mask)
        if m.shape[:2] != img.shape[:2]:
            raise ImageError(f"mask size {m.shape[1]}x{m.shape[0]} differs from the image's "
                             f"{img.shape[1]}x{img.shape[0]}", mask)
    try:
        out, scale = rescale_to_pixel_size(img, pixel_size_nm, target_nm)
    except ValueError as exc:
        raise ImageError(describe(exc), image) from None
    write_image(out_image, out, force=force)
    if m is not None:
        write_image(out_mask, resample_mask(m, scale, out.shape[:2]), force=force)
    if particles is not None and out_annotation is not None:
        header = (f"rescaled from {image.name} ({annotation.name}): {pixel_size_nm:g} -> "
                  f"{target_nm:g} nm/px, scale {scale:g}, x' = (x + 0.5) * scale - 0.5")
        scaled = clamp_particles(scale_particles(particles, scale), out.shape)
        write_annotations(out_annotation, scaled, header, force=force)
    return RescaleResult(scale, out.shape[1], out.shape[0], None if particles is None else len(particles))


def patch_plan(annotation: Path, shape: tuple[int, ...] | None = None) -> list[PatchCentre]:
    """The patch centres of one image's annotation (checked against ``shape`` when given)."""
    particles = read_annotations(annotation)
    if shape is not None:
        check_inside(particles, shape, str(annotation))
    return patch_centres(particles)


def crop_file(image: Path, annotation: Path, patch_path: Callable[[PatchCentre], Path],
              size: int = DEFAULT_SIZE, mode: str = "symmetric", force: bool = False,
              on_patch: Callable[[], None] | None = None) -> list[tuple[PatchCentre, Path, tuple[int, int]]]:
    """Cut and write every patch of one image; returns ``(centre, file, (x0, y0))`` per patch."""
    img = load_em_image(image)
    particles = load_particles(annotation, img.shape)
    out = []
    for c in patch_centres(particles):
        patch = crop_patch(img, c.x, c.y, size, mode)
        dest = patch_path(c)
        write_image(dest, patch, force=force)
        out.append((c, dest, patch_origin(c.x, c.y, size)))
        if on_patch is not None:
            on_patch()
    return out
