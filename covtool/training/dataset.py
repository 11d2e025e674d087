"""tf.data assembly: manifest rows -> decoded, transformed, augmented, batched images.

Decoding keeps the file's precision: every format goes through covtool's one decoder
(:mod:`covtool.training.readers`, :func:`covtool.core.imageio.read_image`: format by content;
OpenCV, tifffile, pydicom) inside ``tf.numpy_function``, so a 16-bit CT slice reaches the network
as its raw 0..~5000 values and an 8-bit PNG as its 0..255, and
:func:`covtool.core.imageio.to_channels` makes grey, RGB and RGBA the model's channels one
documented way (docs/images.md). Decoding runs in parallel (``num_parallel_calls=AUTOTUNE``,
deterministic order).

Order of operations: decode (float32) -> the row's ``transform`` (D4 symmetry) -> optional resize
(bilinear) -> [cache] -> random resized crop -> flips and affine warp -> normalisation ->
photometric augmentation. A row's lesion mask (a model with a segmentation output: jcs) is read
with its image as one more channel (:func:`covtool.training.readers.with_mask`), so the symmetry,
resize, crop, flips and warp move it with the image; it is split off before normalisation and the
photometric augmentation, which never touch it (:func:`split_mask`). Without cache, resize or per-image augmentation (the common case) a
whole batch is read, flipped and warped in one ``numpy_function`` call. Every random choice is a
stateless function of ``(seed, epoch, position)``, so an epoch's batches are the same whether
training runs through or resumes.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from covtool.core.errors import ParameterError
from covtool.training.config import NORMALIZATIONS, AugmentConfig, PipelineConfig
from covtool.training.readers import CHUNK, read_and_warp, read_array, read_chunk
from covtool.training.table import ImageTable


def read_images(paths, flips, turns, cfg: PipelineConfig, aug=None, seeds=None):
    """Several images at the model's size -> float32 (k, H, W, C) (graph function); with ``aug``
    and a seed per image, flipped and warped in the same call (``augment.flip_and_warp``)."""
    import tensorflow as tf

    h, w = cfg.image_size
    args = [paths, flips, turns, cfg.channels, h, w]
    c = cfg.channels + (len(paths.shape) == 2)  # (k, 2) paths: images and masks
    if aug is not None and (aug.hflip or aug.vflip or aug.geometric):
        imgs = tf.numpy_function(partial(read_and_warp, aug=aug), [*args, seeds], tf.float32,
                                 stateful=False)
    else:
        imgs = tf.numpy_function(read_chunk, args, tf.float32, stateful=False)
    return tf.ensure_shape(imgs, [None, h, w, c])


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
        c_out = c + (len(path.shape) == 1)  # an (image, mask) pair
        img = tf.reshape(img, tf.stack([tf.shape(img)[0], tf.shape(img)[1], c_out]))
        img = tf.image.resize(img, (h, w), method="bilinear", antialias=True)
        return tf.ensure_shape(img, [h, w, c_out]), *rest
    return ds.map(read_one, **parallel)


def split_mask(imgs, channels: int):
    """A batch read with its masks (:func:`~covtool.training.readers.with_mask`) -> ``(images,
    masks)``: masks float32 (B, H, W, 1), 1 lesion, 0 not, -1 no mask (interpolated values of a
    resize or warp binarised at 0.5)."""
    import tensorflow as tf

    m = imgs[..., channels:]
    return imgs[..., :channels], tf.where(m < 0, -1.0, tf.cast(m >= 0.5, tf.float32))


def _item_paths(table: ImageTable, with_labels: bool) -> np.ndarray:
    """The table's paths, or (N, 2) images and masks where its masks are read (training)."""
    if table.masks is None or not with_labels:
        return np.asarray(table.paths)
    return np.stack([np.asarray(table.paths, dtype=object), np.asarray(table.masks, dtype=object)],
                    axis=1).astype(str)


def normalise(img, cfg: PipelineConfig):
    import tensorflow as tf

    if cfg.normalize == "standardize":
        return tf.image.per_image_standardization(img)
    if cfg.normalize == "range":
        lo, hi = cfg.value_range
        return (img - lo) / (hi - lo)
    if cfg.normalize == "none":
        return img
    raise ParameterError("normalize", f"must be one of {', '.join(NORMALIZATIONS)}; got "
                                      f"{cfg.normalize!r}")


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
        Elements ``(float32 (B, H, W, C), int32 (B,))``; for a table with masks (and labels)
        ``(images, (labels, masks float32 (B, H, W, 1)))`` (:func:`split_mask`).
    """
    import tensorflow as tf

    from covtool.training.augment import (
        apply_photometric,
        augment_geometric_batch,
        normalised_zero,
        photometric_factors,
        random_resized_crop,
    )

    aug = augment if augment is not None and augment.any else None
    n = len(table)
    epoch_seed = int(seed) * 100_003 + int(epoch)
    order = (np.random.default_rng([int(seed), int(epoch)]).permutation(n) if shuffle
             else np.arange(n))
    if base is None and cfg.cache != "none":
        base = cached_base(table, cfg, masks=with_labels)
    per_image = aug is not None and bool(aug.crop_scale or aug.brightness or aug.contrast)
    masked = table.masks is not None and with_labels

    def output(imgs, labels, factors=None):  # split the masks off; normalise and jitter the images
        masks = None
        if masked:
            imgs, masks = split_mask(imgs, cfg.channels)
        raw, imgs = imgs, normalise(imgs, cfg)
        if factors is not None:   # brightness scales about where a raw 0 lands (docs/train.md)
            zero = normalised_zero(raw, cfg.normalize, cfg.value_range) if aug.brightness else None
            imgs = apply_photometric(imgs, factors, aug, zero)
        if not with_labels:
            return imgs
        return (imgs, (labels, masks)) if masked else (imgs, labels)

    def prepare(i, img, label):  # per image, only where needed: the crop, photometric factors
        s = tf.stack([tf.constant(epoch_seed, tf.int64), tf.cast(i, tf.int64)])
        seeds = tf.random.experimental.stateless_split(s, num=2)
        img = random_resized_crop(img, aug, seeds[1])
        return i, img, label, photometric_factors(aug, seeds[0])

    def geo_seeds(i):
        return tf.stack([tf.fill(tf.shape(i), tf.constant(epoch_seed, tf.int64)),
                         tf.cast(i, tf.int64)], axis=1)

    def finish(i, imgs, labels, factors=None):  # per batch: flips and warp, normalise, jitter
        return output(augment_geometric_batch(imgs, geo_seeds(i), aug), labels, factors)

    def plain(i, imgs, labels):
        return output(imgs, labels)

    parallel = {"num_parallel_calls": tf.data.AUTOTUNE, "deterministic": True}
    positions = np.arange(n, dtype=np.int64)  # with the epoch's seed, seeds each image's augmentation
    cols = (_item_paths(table, with_labels), table.flips, table.turns, table.labels)
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


def cached_base(table: ImageTable, cfg: PipelineConfig, masks: bool = True):
    """Decoded images and labels in table order, cached (memory or file) for reuse over epochs
    (with the table's masks as a last channel, where it has them and ``masks``)."""
    import tensorflow as tf

    cols = (_item_paths(table, masks), table.flips, table.turns, table.labels)
    ds = load_images(tf.data.Dataset.from_tensor_slices(cols), cfg)
    return ds.cache("" if cfg.cache == "memory" else cfg.cache)


