"""Reading only the rows the selection region covers, where the file allows it.

The dark-pixel count needs the region's rows (100 of 512), not the whole slice. An uncompressed
TIFF (COVID-CTset's slices) stores its rows in strips at known offsets, so those rows can be read
straight from the file, after a parse of the first IFD's dozen tags (tifffile parses every tag
and builds a page object: ten times longer than reading the rows). Anything else (compressed,
tiled, colour, BigTIFF, a size that does not add up, a file shorter than its strips: damaged
files included) returns None and is read whole by :func:`covtool.core.imageio.read_image`, which
names what is wrong.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

_TYPES = {3: ("H", 2), 4: ("I", 4)}   # SHORT, LONG
_NEEDED = {256, 257, 258, 259, 273, 277, 278, 279, 284, 322, 339}


def _tiff_strips(fh, size: int):
    """``(height, width, dtype, offsets, counts, rows_per_strip)`` of a plain TIFF, or None."""
    head = fh.read(8)
    if head[:4] == b"II*\x00":
        e = "<"
    elif head[:4] == b"MM\x00*":
        e = ">"
    else:
        return None
    (ifd,) = struct.unpack(e + "I", head[4:8])
    fh.seek(ifd)
    raw = fh.read(2)
    if len(raw) != 2:
        return None
    (n,) = struct.unpack(e + "H", raw)
    entries = fh.read(12 * n)
    if len(entries) != 12 * n:
        return None
    tags: dict[int, tuple] = {}
    for k in range(n):
        tag, typ, count, value = struct.unpack(e + "HHI4s", entries[12 * k: 12 * k + 12])
        if tag not in _NEEDED:
            continue
        if typ not in _TYPES:
            return None
        fmt, width = _TYPES[typ]
        if count * width <= 4:
            vals = struct.unpack(e + fmt * count, value[: count * width])
        else:
            (off,) = struct.unpack(e + "I", value)
            fh.seek(off)
            data = fh.read(count * width)
            if len(data) != count * width:
                return None
            vals = struct.unpack(f"{e}{count}{fmt}", data)
        tags[tag] = vals
    get = lambda t, d=None: tags.get(t, (d,))[0]  # noqa: E731
    if (get(259, 1) != 1 or get(277, 1) != 1 or 322 in tags or 273 not in tags or 279 not in tags
            or 256 not in tags or 257 not in tags):
        return None
    bits, fmt = get(258, 1), get(339, 1)
    dtype = {(8, 1): "u1", (16, 1): "u2", (8, 2): "i1", (16, 2): "i2", (32, 3): "f4"}.get((bits, fmt))
    if dtype is None:
        return None
    height, width = get(257), get(256)
    rps = min(get(278, height) or height, height)
    offsets, counts = tags[273], tags[279]
    row_bytes = width * (bits // 8)
    n_strips = -(-height // rps)
    if len(offsets) != n_strips or len(counts) != n_strips:
        return None
    for i, (o, c) in enumerate(zip(offsets, counts)):
        rows = min(rps, height - i * rps)
        if c < rows * row_bytes or o + rows * row_bytes > size:
            return None
    return height, width, np.dtype(e + dtype), offsets, rps, row_bytes


def tiff_rows(path: str | os.PathLike, rows_of) -> tuple[tuple[int, int], np.ndarray] | None:
    """``((H, W), rows)``: the slice's shape and rows ``rows_of((H, W)) = (y0, y1)`` of a plain
    uncompressed grey TIFF, read without the rest; None where the file is not that simple."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            layout = _tiff_strips(fh, os.fstat(fh.fileno()).st_size)
            if layout is None:
                return None
            height, width, dtype, offsets, rps, row_bytes = layout
            y0, y1 = rows_of((height, width))
            if not 0 <= y0 < y1 <= height:
                return None
            chunks = []
            y = y0
            while y < y1:
                strip = y // rps
                stop = min(y1, (strip + 1) * rps)
                fh.seek(offsets[strip] + (y - strip * rps) * row_bytes)
                chunks.append(fh.read((stop - y) * row_bytes))
                y = stop
    except (OSError, struct.error):
        return None
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if len(data) != (y1 - y0) * row_bytes:
        return None
    return (height, width), np.frombuffer(data, dtype=dtype).reshape(y1 - y0, width)
