"""Virus-particle annotations: approximate centre points and centre lines.

The TEM virus benchmark annotates each particle by its approximate centre: one point for an
isolated round particle, a centre line (a polyline) for an elongated particle or a cluster.
covtool reads two forms of its own and the release's particle files (docs/em.md); readers are
chosen by the end of the file name in :data:`READERS`, so the stages never need to know which.

**Release** (``<image>_particlepositions.txt``, the TEM virus dataset's ``particle_positions``
folders): three header lines (any text but a point), then one ``x;y`` line per vertex; a line
``particleposition`` ends an object (a point, or the vertices of a centre line). A decimal comma
(``12,5;30``) is read as a decimal point.

**Text** (``.txt``, any other suffix): one object per line, whitespace or comma separated numbers,
``x y`` for a point, ``x1 y1 x2 y2 ...`` for a centre line; ``#`` starts a comment; blank lines are
ignored. **CSV** (``.csv``): a header ``object,vertex,x,y`` (other columns are ignored), one vertex
per row; objects are ordered by ``object`` (natural order: 2 before 10), the vertices of an
object by ``vertex``.

Coordinates are pixels of the image, 0-based, with the *pixel-centre* convention: the centre of
the top-left pixel is ``(0, 0)`` and the image covers ``-0.5 .. W-0.5`` horizontally.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from covtool.core.atomic import atomic_open
from covtool.core.errors import CovtoolError
from covtool.core.naming import natural_key


class AnnotationError(CovtoolError):
    """A missing or malformed annotation file or line, or a point outside its image."""


@dataclass(frozen=True)
class Particle:
    """One annotated object.

    Attributes
    ----------
    vertices : ndarray (k, 2), float64
        ``(x, y)`` per vertex; ``k == 1`` for a centre point, ``k >= 2`` for a centre line.
    lines : tuple of int
        The 1-based line in the annotation file of each vertex (for error messages).
    """

    vertices: np.ndarray
    lines: tuple[int, ...]

    @property
    def is_point(self) -> bool:
        return len(self.vertices) == 1


_SPLIT = re.compile(r"[\s,;]+")


def parse_annotation_text(text: str, name: str = "<annotation>") -> list[Particle]:
    """Parse the text form (one object per line) into particles, naming ``name:line`` on errors."""
    particles = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [f for f in _SPLIT.split(line) if f]
        try:
            values = [float(f) for f in fields]
        except ValueError:
            bad = next(f for f in fields if not _is_float(f))
            raise AnnotationError(f"'{bad}' is not a number (expected 'x y' or 'x1 y1 x2 y2 ...')",
                                  name, lineno) from None
        if len(values) % 2:
            raise AnnotationError(f"{len(values)} numbers, expected x y pairs", name, lineno)
        if not all(math.isfinite(v) for v in values):
            raise AnnotationError("coordinates must be finite numbers", name, lineno)
        xy = np.asarray(values, dtype=np.float64).reshape(-1, 2)
        particles.append(Particle(xy, (lineno,) * len(xy)))
    return particles


def parse_annotation_csv(text: str, name: str = "<annotation>") -> list[Particle]:
    """Parse the CSV form (``object,vertex,x,y``, one vertex per row)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise AnnotationError("empty annotation CSV (expected a header object,vertex,x,y)", name, 1) from None
    missing = [c for c in ("object", "vertex", "x", "y") if c not in header]
    if missing:
        raise AnnotationError(f"missing column {', '.join(missing)} (expected object,vertex,x,y)", name, 1)
    col = {c: header.index(c) for c in ("object", "vertex", "x", "y")}
    objects: dict[str, list[tuple[float, float, float, int]]] = {}
    for row in reader:
        lineno = reader.line_num
        if not row or all(not f.strip() for f in row):
            continue
        if row[0].lstrip().startswith("#"):
            continue
        if len(row) != len(header):
            raise AnnotationError(f"{len(row)} fields where the header has {len(header)}", name, lineno)
        obj = row[col["object"]].strip()
        if obj == "":
            raise AnnotationError("empty 'object'", name, lineno)
        try:
            vertex, x, y = (float(row[col[c]]) for c in ("vertex", "x", "y"))
        except ValueError:
            raise AnnotationError("vertex, x and y must be numbers", name, lineno) from None
        if not all(math.isfinite(v) for v in (vertex, x, y)):
            raise AnnotationError("vertex, x and y must be finite numbers", name, lineno)
        objects.setdefault(obj, []).append((vertex, x, y, lineno))
    particles = []
    for obj, rows in sorted(objects.items(), key=lambda kv: natural_key(kv[0])):
        rows.sort(key=lambda r: r[0])
        vs = [r[0] for r in rows]
        if len(set(vs)) != len(vs):
            dup = next(r for r, v in zip(rows[1:], vs[1:]) if vs.count(v) > 1)
            raise AnnotationError(f"object '{obj}' repeats vertex {dup[0]:g}", name, dup[3])
        xy = np.asarray([(r[1], r[2]) for r in rows], dtype=np.float64)
        particles.append(Particle(xy, tuple(r[3] for r in rows)))
    return particles


#: The release's object separator, and how many lines open its particle files.
PARTICLE_SEPARATOR = "particleposition"
PARTICLE_HEADER_LINES = 3


def particle_point(line: str) -> tuple[float, float] | None:
    """``(x, y)`` when ``line`` is a release point ``x;y`` (two numbers, decimal comma or point),
    else None."""
    fields = [f.strip().replace(",", ".") for f in line.split(";")]
    if len(fields) != 2 or not all(_is_float(f) for f in fields):
        return None
    return float(fields[0]), float(fields[1])


def parse_particle_positions(text: str, name: str = "<annotation>") -> list[Particle]:
    """Parse the release's particle file (three header lines, ``x;y`` lines, separators).

    The header lines may hold any text but a point: one that reads as ``x;y`` means the file
    lacks its header (its points would be lost), so it is an error naming the line. Consecutive
    ``x;y`` lines form one object; a ``particleposition`` line closes it (one before the first
    object or after the last closes nothing). Blank lines are ignored.
    """
    lines = text.splitlines()
    if len(lines) < PARTICLE_HEADER_LINES:
        raise AnnotationError(f"{len(lines)} line(s), expected {PARTICLE_HEADER_LINES} header lines "
                              "before the 'x;y' points", name, len(lines) or None)
    for lineno, raw in enumerate(lines[:PARTICLE_HEADER_LINES], start=1):
        if particle_point(raw) is not None:
            raise AnnotationError(f"expected three header lines, line {lineno} is a point "
                                  f"'{raw.strip()}'", name, lineno)
    particles: list[Particle] = []
    xy: list[tuple[float, float]] = []
    rows: list[int] = []

    def close() -> None:
        if xy:
            particles.append(Particle(np.asarray(xy, dtype=np.float64), tuple(rows)))
            xy.clear()
            rows.clear()

    for lineno, raw in enumerate(lines[PARTICLE_HEADER_LINES:], start=PARTICLE_HEADER_LINES + 1):
        line = raw.strip()
        if not line:
            continue
        if line.lower() == PARTICLE_SEPARATOR:
            close()
            continue
        point = particle_point(line)
        if point is None:
            raise AnnotationError(f"'{line}' is not a point 'x;y' (two numbers) nor "
                                  f"'{PARTICLE_SEPARATOR}'", name, lineno)
        if not (math.isfinite(point[0]) and math.isfinite(point[1])):
            raise AnnotationError("coordinates must be finite numbers", name, lineno)
        xy.append(point)
        rows.append(lineno)
    close()
    return particles


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


#: Readers by the end of the file name (lower case, longest match wins); anything else is read
#: as the text form.
READERS: dict[str, Callable[[str, str], list[Particle]]] = {
    ".csv": parse_annotation_csv,
    "_particlepositions.txt": parse_particle_positions,
}


def annotation_reader(path: str | os.PathLike) -> Callable[[str, str], list[Particle]]:
    """The parser :func:`read_annotations` uses for a file of this name."""
    name = Path(path).name.lower()
    ends = [e for e in READERS if name.endswith(e)]
    return READERS[max(ends, key=len)] if ends else parse_annotation_text


def read_annotations(path: str | os.PathLike) -> list[Particle]:
    """Read an annotation file (form chosen by the name's end; see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise AnnotationError("no such annotation file", path)
    if path.is_dir():
        raise AnnotationError("is a folder, expected an annotation file", path)
    parser = annotation_reader(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        if parser is not parse_particle_positions:
            raise AnnotationError("not a text file (expected an annotation file)", path) from None
        text = path.read_bytes().decode("latin-1")  # the release's headers come from Windows tools
    return parser(text, str(path))


def check_inside(particles: Sequence[Particle], shape: tuple[int, ...], name: str = "<annotation>") -> None:
    """Raise when a vertex lies outside an image of ``shape`` (H, W[, C]).

    The image covers ``-0.5 <= x <= W - 0.5`` and ``-0.5 <= y <= H - 0.5`` (pixel centres).
    """
    h, w = int(shape[0]), int(shape[1])
    for p in particles:
        for (x, y), line in zip(p.vertices, p.lines):
            if not (-0.5 <= x <= w - 0.5 and -0.5 <= y <= h - 0.5):
                raise AnnotationError(f"point ({x:g}, {y:g}) is outside the {w}x{h} image", name, line)


def scale_particles(particles: Sequence[Particle], scale_x: float, scale_y: float | None = None) -> list[Particle]:
    """Map annotations onto an image resampled by ``scale`` (output/input pixels).

    Pixel centres, as the resampling: ``x' = (x + 0.5) * scale - 0.5``.
    """
    sy = scale_x if scale_y is None else scale_y
    s = np.array([scale_x, sy])
    return [Particle((p.vertices + 0.5) * s - 0.5, p.lines) for p in particles]


def clamp_particles(particles: Sequence[Particle], shape: tuple[int, ...]) -> list[Particle]:
    """Keep vertices on an image of ``shape`` (H, W[, C]): clip to ``-0.5 .. W-0.5``.

    A resampled image has ``round(W * scale)`` pixels, so a vertex near the border of the
    source can land up to half an output pixel past the new border; it is moved onto it.
    """
    h, w = int(shape[0]), int(shape[1])
    lo, hi = np.array([-0.5, -0.5]), np.array([w - 0.5, h - 0.5])
    return [Particle(np.clip(p.vertices, lo, hi), p.lines) for p in particles]


def format_annotation_text(particles: Sequence[Particle], header: str = "") -> str:
    """The text form of ``particles`` (one object per line), with an optional ``#`` header."""
    out = [f"# {h}" for h in header.splitlines()] if header else []
    for p in particles:
        out.append(" ".join(f"{v:.4f}".rstrip("0").rstrip(".") for v in p.vertices.ravel()))
    return "\n".join(out) + "\n"


def write_annotations(path: str | os.PathLike, particles: Sequence[Particle], header: str = "",
                      force: bool = False) -> Path:
    """Write the text form atomically."""
    with atomic_open(path, "w", force=force) as fh:
        fh.write(format_annotation_text(particles, header))
    return Path(path)
