"""The 8 symmetries of the square (dihedral group D4), named as the ``transform`` column names them.

The ``balance`` stage writes a ``transform`` column instead of copying pixels; the input pipeline
applies it at load time. A symmetry is ``(flip, k)``: first an optional left-right mirror, then
``k`` quarter turns counter-clockwise (``np.rot90(img, k)``; ``tf.image.rot90`` turns the same
way). Accepted names (case-insensitive; an empty cell is the identity):

========================  =========================  ==========
name                      balance-style alias        (flip, k)
========================  =========================  ==========
``identity``              ``rot90_k0``               (False, 0)
``rot90``                 ``rot90_k1``               (False, 1)
``rot180``                ``rot90_k2``               (False, 2)
``rot270``                ``rot90_k3``               (False, 3)
``flip``                  ``flip_rot90_k0``          (True, 0)
``flip_rot90``            ``flip_rot90_k1``          (True, 1)
``flip_rot180``           ``flip_rot90_k2``          (True, 2)
``flip_rot270``           ``flip_rot90_k3``          (True, 3)
========================  =========================  ==========
"""

from __future__ import annotations

import re

import numpy as np

from covtool.em.balance import apply_transform, parse_transform

SYMMETRIES: tuple[str, ...] = ("identity", "rot90", "rot180", "rot270",
                               "flip", "flip_rot90", "flip_rot180", "flip_rot270")
_SHORT = re.compile(r"^(flip)?(?:_?rot(90|180|270))?$")


def parse_symmetry(name: str | None) -> tuple[bool, int]:
    """``(flip, k)`` for a symmetry name; raises ``ValueError`` naming the accepted names."""
    text = "" if name is None else str(name).strip().lower()
    if text in ("", "identity", "none", "nan"):
        return False, 0
    try:  # the names the balance stage writes
        return parse_transform(text)
    except ValueError:
        pass
    m = _SHORT.match(text)
    if m and text and (m.group(1) or m.group(2)):
        return bool(m.group(1)), {None: 0, "90": 1, "180": 2, "270": 3}[m.group(2)]
    raise ValueError(f"unknown transform '{name}' (expected one of {', '.join(SYMMETRIES)}, "
                     f"or rot90_k0..3 / flip_rot90_k0..3)")


def symmetry_name(flip: bool, k: int) -> str:
    """The canonical name of ``(flip, k)``."""
    return SYMMETRIES[(4 if flip else 0) + int(k) % 4]


def apply_symmetry(img: np.ndarray, name: str | None) -> np.ndarray:
    """Apply a named symmetry to ``img`` (H, W) or (H, W, C), any dtype; the reference for tests."""
    flip, k = parse_symmetry(name)
    return apply_transform(img, f"{'flip_' if flip else ''}rot90_k{k}")
