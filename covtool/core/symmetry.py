"""The 8 symmetries of the square (dihedral group D4): one vocabulary for the ``transform`` column.

The ``balance`` stage names a symmetry in a row's ``transform`` cell instead of copying pixels;
the training input pipeline applies it as it reads the image. A symmetry is ``(flip, k)``: first
an optional left-right mirror (``np.fliplr``, ``tf.image.flip_left_right``), then ``k`` quarter
turns counter-clockwise (``np.rot90(img, k)``; ``tf.image.rot90`` turns the same way).

Names. The canonical name (:data:`SYMMETRIES`, what :func:`symmetry_name` gives and ``balance``
writes) is ``rot90_k{k}`` or ``flip_rot90_k{k}``: it says the operation exactly, and it is what
every balanced manifest has held, so old and new manifests (and the augmented ids
``<id>_<transform>`` built from it) stay the same. :func:`parse_symmetry` also reads the
descriptive names (:data:`DESCRIPTIVE`), case-insensitively; an empty cell is the identity.

=================  ===================  ==========
canonical          descriptive          (flip, k)
=================  ===================  ==========
``rot90_k0``       ``identity``         (False, 0)
``rot90_k1``       ``rot90``            (False, 1)
``rot90_k2``       ``rot180``           (False, 2)
``rot90_k3``       ``rot270``           (False, 3)
``flip_rot90_k0``  ``flip``             (True, 0)
``flip_rot90_k1``  ``flip_rot90``       (True, 1)
``flip_rot90_k2``  ``flip_rot180``      (True, 2)
``flip_rot90_k3``  ``flip_rot270``      (True, 3)
=================  ===================  ==========

Pure numpy: no TensorFlow here (the input pipeline applies :func:`orient` inside its reader).
"""

from __future__ import annotations

import numpy as np

__all__ = ["DESCRIPTIVE", "IDENTITY", "SYMMETRIES", "apply_symmetry", "orient", "parse_symmetry",
           "symmetry_name"]

#: canonical names, ``(flip, k)`` order: index ``4 * flip + k``
SYMMETRIES: tuple[str, ...] = tuple(f"{p}rot90_k{k}" for p in ("", "flip_") for k in range(4))
#: descriptive names, same order
DESCRIPTIVE: tuple[str, ...] = ("identity", "rot90", "rot180", "rot270",
                                "flip", "flip_rot90", "flip_rot180", "flip_rot270")
IDENTITY = SYMMETRIES[0]
# "none" and "nan" (a missing cell read as a float) are the identity, as an empty cell is
_BY_NAME: dict[str, tuple[bool, int]] = {
    **{name: (i >= 4, i % 4) for names in (SYMMETRIES, DESCRIPTIVE) for i, name in enumerate(names)},
    "": (False, 0), "none": (False, 0), "nan": (False, 0),
}


def parse_symmetry(name: object) -> tuple[bool, int]:
    """``(flip, k)`` of a symmetry's name, in either spelling (case and surrounding space ignored;
    None or an empty name is the identity).

    Raises
    ------
    ValueError
        ``unknown transform '<name>' (expected one of ...)`` for any other name.
    """
    text = "" if name is None else str(name).strip().lower()
    try:
        return _BY_NAME[text]
    except KeyError:
        raise ValueError(f"unknown transform '{name}' (expected one of {', '.join(SYMMETRIES)}, "
                         f"or {', '.join(DESCRIPTIVE)})") from None


def symmetry_name(flip: bool, k: int) -> str:
    """The canonical name of ``(flip, k)`` (``k`` taken modulo 4)."""
    return SYMMETRIES[(4 if flip else 0) + int(k) % 4]


def orient(img: np.ndarray, flip, k) -> np.ndarray:
    """``img`` (H, W) or (H, W, C), any dtype, mirrored left-right when ``flip``, then turned ``k``
    quarter turns counter-clockwise; a view, (W, H[, C]) for odd ``k`` on a non-square image."""
    return np.rot90(img[:, ::-1] if flip else img, int(k), axes=(0, 1))


def apply_symmetry(img: np.ndarray, name: object) -> np.ndarray:
    """Apply a named symmetry (:func:`parse_symmetry`'s names) to ``img`` (H, W) or (H, W, C)."""
    flip, k = parse_symmetry(name)
    return orient(img, flip, k)
