"""The image table: a manifest's rows checked up front and turned into arrays for tf.data.

Every file must exist and sniff as an image, every label be one of the classes, every
``transform`` a known symmetry; each failure names its manifest line. Also the shape a model is
given by the training images (:func:`probe_shape`, :func:`model_channels`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from covtool.core.errors import ImageError, ManifestError
from covtool.core.imageio import image_format
from covtool.core.manifest import row_error
from covtool.core.symmetry import parse_symmetry


@dataclass
class ImageTable:
    """The rows a dataset is made of, checked up front (every file exists, every label known).

    Attributes
    ----------
    ids, paths : list of str
    labels : ndarray (N,), int32
        Index into the class list; -1 where the row has no label.
    flips, turns : ndarray (N,), int32
        The row's D4 symmetry (mirror 0/1, quarter turns 0..3).
    lines : list of int
        Manifest line of each row, for error messages.
    masks : list of str, optional
        Each row's lesion mask file (``""``: none), for a model with a segmentation output (jcs);
        ``None``: the rows' masks are not read.
    """

    ids: list[str]
    paths: list[str]
    labels: np.ndarray
    flips: np.ndarray
    turns: np.ndarray
    lines: list[int] = field(default_factory=list)
    masks: list[str] | None = None

    def __len__(self) -> int:
        return len(self.paths)


def image_table(df: pd.DataFrame, classes: list[str] | None, require_label: bool = True,
                masks: bool = False) -> ImageTable:
    """Check a manifest's rows and turn them into arrays for :func:`make_dataset`.

    Raises a :class:`~covtool.core.errors.ManifestError` naming the manifest line for a missing
    file, a label outside ``classes`` or an unknown ``transform``. With ``masks``, each row's
    ``mask`` cell (a lesion mask file; empty or no column: none) is checked the same way.
    """
    has_label = "label" in df.columns
    if require_label and not has_label:
        raise ManifestError("missing column label", df.attrs.get("manifest"), 1)
    index = {c: i for i, c in enumerate(classes or [])}
    ids, paths, labels, flips, turns, lines = [], [], [], [], [], []
    transforms = df["transform"] if "transform" in df.columns else [""] * len(df)
    row_ids = df["id"] if "id" in df.columns else [Path(p).stem for p in df["path"]]
    for idx, rid, path, transform, label in zip(df.index, row_ids, df["path"], transforms,
                                                df["label"] if has_label else [""] * len(df), strict=True):
        if not path or not os.path.isfile(path):
            raise row_error(df, idx, f"no such image file {path}")
        try:
            image_format(path)  # cheap and early: content that is no image format at all
        except ImageError as exc:
            raise row_error(df, idx, f"{exc.message}: {path}") from None
        try:
            flip, k = parse_symmetry(transform)
        except ValueError as exc:
            raise row_error(df, idx, str(exc)) from None
        if classes is not None and (label != "" or require_label):
            if label not in index:
                raise row_error(df, idx, f"label '{label}' is not one of the model's classes "
                                         f"({', '.join(classes)})")
            labels.append(index[label])
        else:
            labels.append(-1)
        ids.append(str(rid))
        paths.append(str(path))
        flips.append(int(flip))
        turns.append(k)
        lines.append(int(idx) if isinstance(idx, (int, np.integer)) else 0)
    as32 = lambda v: np.asarray(v, dtype=np.int32)  # noqa: E731
    return ImageTable(ids, paths, as32(labels), as32(flips), as32(turns), lines,
                      mask_files(df) if masks else None)


def mask_files(df: pd.DataFrame) -> list[str]:
    """Each row's ``mask`` file, ``""`` where the cell is empty or there is no column; a mask
    that is not there or no image is a :class:`ManifestError` naming the line."""
    if "mask" not in df.columns:
        return [""] * len(df)
    out = []
    for idx, value in zip(df.index, df["mask"], strict=True):
        path = value.strip() if isinstance(value, str) else ""
        if path.lower() == "nan":
            path = ""
        if path:
            if not os.path.isfile(path):
                raise row_error(df, idx, f"no such mask file {path}")
            try:
                image_format(path)
            except ImageError as exc:
                raise row_error(df, idx, f"{exc.message}: {path}") from None
        out.append(path)
    return out



def probe_shape(path: str, paths=None) -> tuple[int, int, int]:
    """``(H, W, channels)`` for a model: the size of the image at ``path`` and the channels of
    ``paths`` (default: that image alone) by :func:`model_channels`."""
    from covtool.core.imageio import read_image

    img = read_image(path)
    return int(img.shape[0]), int(img.shape[1]), model_channels([path] if paths is None else paths)


def model_channels(paths) -> int:
    """3 when any of the images has colour, else 1 (grey, grey stored as RGB, an alpha channel
    composited on black: :func:`covtool.core.imageio.to_channels`); the same for any row order.

    Headers first (:func:`covtool.core.imageio.stored_channels`, no decoding): only an image stored
    with three or more channels, or whose header does not say, is decoded, and the scan stops at the
    first one with colour. A file that cannot be read is passed over here: the table check and the
    decoding report it, naming its manifest line.
    """
    from covtool.core.imageio import composite_alpha, grey_channel, read_image, stored_channels

    for path in paths:
        stored = stored_channels(path)
        if stored is not None and stored < 3:
            continue
        try:
            img = read_image(path)
        except ImageError:
            continue
        if grey_channel(composite_alpha(img)) is None:
            return 3
    return 1
