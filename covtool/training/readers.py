"""Image readers for the input pipeline: covtool's one decoder, the row's symmetry, the channels.

They run inside ``tf.numpy_function``; a failure is raised as a marked ``ValueError`` that
:func:`covtool.training.tf_errors.translate_tf_error` turns back into one line naming the file.
"""

from __future__ import annotations

import numpy as np

from covtool.core.errors import ImageError
from covtool.core.imageio import to_channels
from covtool.core.symmetry import orient
from covtool.training.tf_errors import READ_PREFIX, size_mismatch, unreadable


def oriented(name: str, flip, turns, channels) -> np.ndarray:
    """One image with its stored dtype and values, its symmetry applied (often a view); a file
    that cannot be decoded is an :class:`ImageError` naming it (outside ``numpy_function``)."""
    from covtool.core.imageio import read_image

    try:
        img = read_image(name)
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one line naming the file
        reason = exc.message if isinstance(exc, ImageError) else str(exc) or type(exc).__name__
        raise ImageError(f"{READ_PREFIX}{' '.join(reason.split())}", name) from None
    return orient(to_channels(img, int(channels)), flip, turns)


def _oriented(path, flip, turns, channels) -> np.ndarray:
    """:func:`oriented` inside ``numpy_function``: its error a marked ``ValueError``."""
    name = path.decode() if isinstance(path, bytes) else str(path)
    try:
        return oriented(name, flip, turns, channels)
    except ImageError as exc:
        raise unreadable(name, exc.message.removeprefix(READ_PREFIX)) from None


def read_array(path, flip, turns, channels) -> np.ndarray:
    """One image as float32 (H, W, channels) with its stored values, its symmetry applied; for
    an ``(image, mask)`` pair, the mask channel after them (:func:`with_mask`)."""
    if np.ndim(path) == 1:
        return with_mask(path, flip, turns, channels)
    return np.ascontiguousarray(_oriented(path, flip, turns, channels), np.float32)


def _name(path) -> str:
    return path.decode() if isinstance(path, bytes) else str(path)


def with_mask(pair, flip, turns, channels) -> np.ndarray:
    """An image and its lesion mask, the same symmetry applied to both, as one float32
    (H, W, channels + 1) array: the mask channel last, 1 where the mask is non-zero, 0 elsewhere,
    and -1 everywhere for a row without a mask (its segmentation loss ignores it). The geometric
    augmentation then moves the mask with the image; the pipeline splits them before
    normalisation (:func:`covtool.training.dataset.split_mask`)."""
    image, mask = _name(pair[0]), _name(pair[1])
    img = _oriented(image, flip, turns, channels)
    out = np.empty((*img.shape[:2], int(channels) + 1), np.float32)
    out[..., :-1] = img
    if not mask:
        out[..., -1] = -1.0
        return out
    m = _oriented(mask, flip, turns, 1)
    if m.shape[:2] != img.shape[:2]:
        raise unreadable(mask, f"the mask is {m.shape[0]}x{m.shape[1]} but its image {image} is "
                               f"{img.shape[0]}x{img.shape[1]}")
    out[..., -1] = m[..., 0] != 0
    return out


CHUNK = 8  # images read per call when they need no resizing (a call per image costs more)


def read_chunk(paths, flips, turns, channels, height, width) -> np.ndarray:
    """Images that must all be ``height`` x ``width`` -> float32 (k, H, W, channels); ``paths``
    (k, 2) of images and masks: (k, H, W, channels + 1), the mask last (:func:`with_mask`)."""
    masked = np.ndim(paths) == 2
    out = np.empty((len(paths), int(height), int(width), int(channels) + masked), np.float32)
    for j, (path, flip, k) in enumerate(zip(paths, flips, turns)):
        # cast to float32 by the copy below
        img = with_mask(path, flip, k, channels) if masked else _oriented(path, flip, k, channels)
        if img.shape[:2] != out.shape[1:3]:
            name = _name(path[0] if masked else path)
            raise size_mismatch(name, img.shape[:2], (height, width))
        out[j] = img
    return out


def read_and_warp(paths, flips, turns, channels, height, width, seeds, aug) -> np.ndarray:
    """:func:`read_chunk`, each image then flipped and warped by its own seed."""
    from covtool.training.augment import flip_and_warp_batch

    return flip_and_warp_batch(read_chunk(paths, flips, turns, channels, height, width), seeds, aug)


