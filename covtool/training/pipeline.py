"""The tf.data input pipeline: manifest rows -> decoded, transformed, augmented, batched images.

Decoding keeps the file's precision: every format goes through covtool's one decoder,
:func:`covtool.core.imageio.read_image` (format by content; OpenCV, tifffile, pydicom) inside
``tf.numpy_function``, so a 16-bit CT slice reaches the network as its raw 0..~5000 values and an
8-bit PNG as its 0..255, and :func:`covtool.core.imageio.to_channels` makes grey, RGB and RGBA
the model's channels one documented way (docs/images.md). Decoding runs in parallel
(``num_parallel_calls=AUTOTUNE``, deterministic order).

Order of operations: decode (float32) -> the row's ``transform`` (D4 symmetry) -> optional resize
(bilinear) -> [cache] -> random resized crop -> flips and affine warp -> normalisation ->
photometric augmentation. Without cache, resize or per-image augmentation (the common case) a
whole batch is read, flipped and warped in one ``numpy_function`` call. Every random choice is a stateless function of ``(seed, epoch, position)``, so an
epoch's batches are the same whether training runs through or resumes.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from covtool.core.errors import ImageError, ManifestError, UsageError
from covtool.core.imageio import image_format, to_channels
from covtool.core.manifest import row_error
from covtool.training.symmetry import parse_symmetry

NORMALIZATIONS = ("standardize", "range", "none")


@dataclass
class PipelineConfig:
    """How images become network inputs (stored in ``config.json``).

    Attributes
    ----------
    image_size : (H, W)
        The model's input size.
    channels : int
        1 (grey) or 3 (RGB).
    resize : bool
        Resize every image to ``image_size`` (bilinear); off, a differently sized image is an error.
    normalize : str
        ``standardize`` (per image: zero mean, unit variance; TEM), ``range`` (``(x - lo) / (hi - lo)``
        with the fixed ``value_range``; CT) or ``none`` (raw values, as the COVID-CTset authors).
    value_range : (lo, hi)
        For ``normalize="range"``.
    cache : str
        ``none``, ``memory`` or a file prefix for ``tf.data.Dataset.cache``.
    """

    image_size: tuple[int, int] = (256, 256)
    channels: int = 1
    resize: bool = False
    normalize: str = "standardize"
    value_range: tuple[float, float] = (0.0, 5000.0)
    cache: str = "none"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["image_size"], d["value_range"] = list(self.image_size), list(self.value_range)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PipelineConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("image_size", "value_range"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


@dataclass
class AugmentConfig:
    """On-the-fly augmentation of training images (stored in ``config.json``).

    COVID-CTset (preset ``covid-ctset``): flips, rotation 0-360 degrees, zoom 5 %, shifts 5 %.
    COVID-CT (preset ``covid-ct``): random crop at scale 0.5 (area 0.5-1, aspect 3/4-4/3, resized
    back), horizontal flip, brightness and contrast 0.2.

    Attributes
    ----------
    hflip, vflip : bool
        Mirror left-right / up-down with probability 1/2.
    rotation : float
        Degrees; the angle is uniform in [-rotation, rotation] (Keras ``rotation_range``).
    zoom : float
        Scale uniform in [1 - zoom, 1 + zoom] (Keras ``zoom_range``).
    shift : float
        Translation uniform in [-shift, shift] of the width and height.
    shear : float
        Shear angle in radians, uniform in [-shear, shear] (the COVID-CTset code used 0.05).
    crop_scale : float
        Random resized crop of area fraction in [crop_scale, 1]; 0 is off.
    brightness, contrast : float
        Factors uniform in [1 - b, 1 + b] (torchvision ``ColorJitter``), applied after normalisation.
    """

    hflip: bool = False
    vflip: bool = False
    rotation: float = 0.0
    zoom: float = 0.0
    shift: float = 0.0
    shear: float = 0.0
    crop_scale: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0

    @property
    def geometric(self) -> bool:
        return bool(self.rotation or self.zoom or self.shift or self.shear)

    @property
    def any(self) -> bool:
        return bool(self.hflip or self.vflip or self.geometric or self.crop_scale
                    or self.brightness or self.contrast)

    def to_dict(self) -> dict:
        return asdict(self)


AUGMENT_PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(),
    "covid-ctset": AugmentConfig(hflip=True, vflip=True, rotation=360.0, zoom=0.05, shift=0.05),
    "covid-ct": AugmentConfig(hflip=True, crop_scale=0.5, brightness=0.2, contrast=0.2),
    "tem": AugmentConfig(),  # the TEM paper augments offline, by the balance stage's transforms
}


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
    """

    ids: list[str]
    paths: list[str]
    labels: np.ndarray
    flips: np.ndarray
    turns: np.ndarray
    lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)


def image_table(df: pd.DataFrame, classes: list[str] | None, require_label: bool = True) -> ImageTable:
    """Check a manifest's rows and turn them into arrays for :func:`make_dataset`.

    Raises a :class:`~covtool.core.errors.ManifestError` naming the manifest line for a missing
    file, a label outside ``classes`` or an unknown ``transform``.
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
    return ImageTable(ids, paths, as32(labels), as32(flips), as32(turns), lines)


def orient(img: np.ndarray, flip, turns) -> np.ndarray:
    """A row's D4 symmetry (:mod:`covtool.training.symmetry`): mirror, then quarter turns."""
    return np.rot90(img[:, ::-1] if flip else img, int(turns))


SIZE_MARK = "covtool-size-mismatch"
READ_MARK = "covtool-unreadable"


def _oriented(path, flip, turns, channels) -> np.ndarray:
    """One image with its stored dtype and values, its symmetry applied (often a view)."""
    from covtool.core.imageio import read_image

    name = path.decode() if isinstance(path, bytes) else str(path)
    try:
        img = read_image(name)
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one line naming the file
        reason = exc.message if isinstance(exc, ImageError) else str(exc) or type(exc).__name__
        # translate_tf_error turns this into a one-line ImageError
        raise ValueError(f"{READ_MARK}[{name}] {' '.join(reason.split())}") from None
    return orient(to_channels(img, int(channels)), flip, turns)


def read_array(path, flip, turns, channels) -> np.ndarray:
    """One image as float32 (H, W, channels) with its stored values, its symmetry applied."""
    return np.ascontiguousarray(_oriented(path, flip, turns, channels), np.float32)


CHUNK = 8  # images read per call when they need no resizing (a call per image costs more)


def _read_chunk(paths, flips, turns, channels, height, width) -> np.ndarray:
    out = np.empty((len(paths), int(height), int(width), int(channels)), np.float32)
    for j, (path, flip, k) in enumerate(zip(paths, flips, turns)):
        img = _oriented(path, flip, k, channels)  # cast to float32 by the copy below
        if img.shape[:2] != out.shape[1:3]:
            name = path.decode() if isinstance(path, bytes) else str(path)
            # translate_tf_error turns this into a one-line ImageError
            raise ValueError(f"{SIZE_MARK}[{name}] {img.shape[0]}x{img.shape[1]} {height}x{width}")
        out[j] = img
    return out


def _read_and_warp(paths, flips, turns, channels, height, width, seeds, aug) -> np.ndarray:
    from covtool.training.augment import flip_and_warp_batch

    return flip_and_warp_batch(_read_chunk(paths, flips, turns, channels, height, width), seeds, aug)


def read_images(paths, flips, turns, cfg: PipelineConfig, aug=None, seeds=None):
    """Several images at the model's size -> float32 (k, H, W, C) (graph function); with ``aug``
    and a seed per image, flipped and warped in the same call (``augment.flip_and_warp``)."""
    import tensorflow as tf

    h, w = cfg.image_size
    args = [paths, flips, turns, cfg.channels, h, w]
    if aug is not None and (aug.hflip or aug.vflip or aug.geometric):
        imgs = tf.numpy_function(partial(_read_and_warp, aug=aug), [*args, seeds], tf.float32,
                                 stateful=False)
    else:
        imgs = tf.numpy_function(_read_chunk, args, tf.float32, stateful=False)
    return tf.ensure_shape(imgs, [None, h, w, cfg.channels])


def load_images(ds, cfg: PipelineConfig):
    """``(path, flip, turns, *rest)`` elements -> ``(float32 (H, W, C), *rest)`` elements.

    Decoding is covtool's reader (OpenCV, tifffile, pydicom: 8 and 16 bits as stored) through
    ``numpy_function``; OpenCV releases the GIL, so tf.data's parallel calls run side by side.
    Images already at the model's size are read ``CHUNK`` at a time (one call per image costs
    about as much as reading it); others are resized by TensorFlow (bilinear, antialiased).
    """
    import tensorflow as tf

    h, w = cfg.image_size
    c = cfg.channels
    parallel = {"num_parallel_calls": tf.data.AUTOTUNE, "deterministic": True}
    if not cfg.resize:
        return ds.batch(CHUNK).map(lambda paths, flips, turns, *rest:
                                   (read_images(paths, flips, turns, cfg), *rest),
                                   **parallel).unbatch()

    def read_one(path, flip, turns, *rest):
        img = tf.numpy_function(read_array, [path, flip, turns, c], tf.float32, stateful=False)
        img = tf.reshape(img, tf.stack([tf.shape(img)[0], tf.shape(img)[1], c]))
        img = tf.image.resize(img, (h, w), method="bilinear", antialias=True)
        return tf.ensure_shape(img, [h, w, c]), *rest
    return ds.map(read_one, **parallel)


def normalise(img, cfg: PipelineConfig):
    import tensorflow as tf

    if cfg.normalize == "standardize":
        return tf.image.per_image_standardization(img)
    if cfg.normalize == "range":
        lo, hi = cfg.value_range
        return (img - lo) / (hi - lo)
    if cfg.normalize == "none":
        return img
    raise UsageError(f"--normalize must be one of {', '.join(NORMALIZATIONS)}, got '{cfg.normalize}'")


def make_dataset(table: ImageTable, cfg: PipelineConfig, batch_size: int, *,
                 augment: AugmentConfig | None = None, shuffle: bool = False, seed: int = 0,
                 epoch: int = 0, with_labels: bool = True, base=None,
                 drop_remainder: bool = False):
    """A batched, prefetched ``tf.data.Dataset`` of ``(images, labels)`` (or images only).

    Parameters
    ----------
    table : ImageTable
    cfg : PipelineConfig
    batch_size : int
    augment : AugmentConfig, optional
        Training augmentation; ``None`` or all-off for validation and prediction.
    shuffle : bool
        Order rows by a permutation drawn from ``(seed, epoch)``.
    seed, epoch : int
        Make the epoch's order and augmentation reproducible (and resumable).
    base : tf.data.Dataset, optional
        A cached dataset from :func:`cached_base` to reuse across epochs (with ``cfg.cache``).

    Returns
    -------
    tf.data.Dataset
        Elements ``(float32 (B, H, W, C), int32 (B,))``.
    """
    import tensorflow as tf

    from covtool.training.augment import (
        apply_photometric,
        augment_geometric_batch,
        photometric_factors,
        random_resized_crop,
    )

    aug = augment if augment is not None and augment.any else None
    n = len(table)
    epoch_seed = int(seed) * 100_003 + int(epoch)
    order = (np.random.default_rng([int(seed), int(epoch)]).permutation(n) if shuffle
             else np.arange(n))
    if base is None and cfg.cache != "none":
        base = cached_base(table, cfg)
    per_image = aug is not None and bool(aug.crop_scale or aug.brightness or aug.contrast)

    def prepare(i, img, label):  # per image, only where needed: the crop, photometric factors
        s = tf.stack([tf.constant(epoch_seed, tf.int64), tf.cast(i, tf.int64)])
        seeds = tf.random.experimental.stateless_split(s, num=2)
        img = random_resized_crop(img, aug, seeds[1])
        return i, img, label, photometric_factors(aug, seeds[0])

    def geo_seeds(i):
        return tf.stack([tf.fill(tf.shape(i), tf.constant(epoch_seed, tf.int64)),
                         tf.cast(i, tf.int64)], axis=1)

    def finish(i, imgs, labels, factors=None):  # per batch: flips and warp, normalise, jitter
        imgs = normalise(augment_geometric_batch(imgs, geo_seeds(i), aug), cfg)
        if factors is not None:
            imgs = apply_photometric(imgs, factors, aug)
        return (imgs, labels) if with_labels else imgs

    def plain(i, imgs, labels):
        imgs = normalise(imgs, cfg)
        return (imgs, labels) if with_labels else imgs

    parallel = {"num_parallel_calls": tf.data.AUTOTUNE, "deterministic": True}
    positions = np.arange(n, dtype=np.int64)  # with the epoch's seed, seeds each image's augmentation
    cols = (table.paths, table.flips, table.turns, table.labels)
    cols = tuple(np.asarray(c)[order] for c in cols) + (positions,)
    if base is None and not cfg.resize and not per_image:
        # the common case: a whole batch read, flipped and warped in one call
        ds = tf.data.Dataset.from_tensor_slices(cols).batch(batch_size, drop_remainder=drop_remainder)
        ds = ds.map(lambda paths, flips, turns, labels, i:
                    plain(i, read_images(paths, flips, turns, cfg, aug, geo_seeds(i)), labels),
                    **parallel)
        return ds.prefetch(tf.data.AUTOTUNE)
    # elements (position in the epoch, image, label), batched after any per-image step
    if base is not None:
        ds = base
        if shuffle:
            ds = ds.shuffle(n, seed=epoch_seed, reshuffle_each_iteration=False)
        ds = ds.enumerate().map(lambda i, elem: (i, elem[0], elem[1]))
    else:
        ds = load_images(tf.data.Dataset.from_tensor_slices(cols), cfg)
        ds = ds.map(lambda img, label, i: (i, img, label))
    if per_image:
        ds = ds.map(prepare, **parallel)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(finish if aug is not None else plain, **parallel)
    return ds.prefetch(tf.data.AUTOTUNE)


def cached_base(table: ImageTable, cfg: PipelineConfig):
    """Decoded images and labels in table order, cached (memory or file) for reuse over epochs."""
    import tensorflow as tf

    cols = (table.paths, table.flips, table.turns, table.labels)
    ds = load_images(tf.data.Dataset.from_tensor_slices(cols), cfg)
    return ds.cache("" if cfg.cache == "memory" else cfg.cache)


def translate_tf_error(exc: BaseException) -> ImageError | None:
    """A one-line covtool error for TensorFlow's errors about our images, else ``None``."""
    text = str(exc)
    if SIZE_MARK in text:
        import re

        m = re.search(re.escape(SIZE_MARK) + r"\[(.+?)\] (\d+x\d+) (\d+x\d+)", text)
        if m:
            return ImageError(f"image is {m.group(2)} but the model takes "
                              f"{m.group(3)} (--resize resizes images)", m.group(1))
        return ImageError("an image's size does not match the model's input (use --resize)")
    if READ_MARK in text:
        import re

        m = re.search(re.escape(READ_MARK) + r"\[(.+?)\] ([^\n]+)", text)
        if m:
            return ImageError(f"could not read the image: {m.group(2).strip()}", m.group(1))
    if "ImageError" in text:
        return ImageError(f"could not read an image ({text.strip().splitlines()[0][:200]})")
    return None


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
