"""The papers' on-the-fly augmentation as functions of an image and a stateless seed.

Geometric augmentation works on raw values before normalisation (COVID-CT: random resized crop,
per image; COVID-CTset: flips, rotation, zoom, shift, shear with Keras ImageDataGenerator's
``fill_mode="nearest"``, per batch). Photometric augmentation works after normalisation (COVID-CT:
brightness and contrast; before per-image standardisation they would be undone by it), in the
normalised units, so that it equals the jitter on raw values followed by a fixed normalisation
(:func:`apply_photometric`): its factors are drawn per image, then applied to the batch.

Every random draw comes from the image's own stateless seed (a function of ``(seed, epoch,
position in the epoch)``), so an epoch does not depend on batching and ``--resume`` is exact.
Flips and the affine warp run as one NumPy/OpenCV call per batch: each image's parameters from a
generator seeded by its seed, the warp by OpenCV's ``warpAffine`` (bilinear, replicated border).
On a CPU this is several times faster than the same work as TensorFlow ops (a few dozen small ops
per image, then ``ImageProjectiveTransformV3``), and equal to TensorFlow's transform within
OpenCV's 1/32-pixel interpolation grid (tests/training/test_pipeline.py compares them).
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np


def _uniform(seed, lo, hi, shape=()):
    import tensorflow as tf

    return tf.random.stateless_uniform(shape, seed=seed, minval=lo, maxval=hi, dtype=tf.float32)


def affine_matrix(angle, zoom_x, zoom_y, shift_x, shift_y, shear, height, width) -> np.ndarray:
    """The 8 projective-transform parameters mapping output pixels to input pixels.

    input = R(angle) . Shear(shear) . diag(zoom) . (output - centre) + centre + shift, so a zoom
    above 1 shows more of the image (Keras's convention). Angles here in radians (the options
    ``rotation`` and ``shear`` are degrees, converted by :func:`flip_and_warp`).
    """
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    c, s = math.cos(angle), math.sin(angle)
    # R . Sh, with Sh = [[1, -sin(shear)], [0, cos(shear)]] as in Keras's apply_affine_transform
    m00, m01 = c, -c * math.sin(shear) - s * math.cos(shear)
    m10, m11 = s, -s * math.sin(shear) + c * math.cos(shear)
    a0, a1 = m00 * zoom_x, m01 * zoom_y
    b0, b1 = m10 * zoom_x, m11 * zoom_y
    a2 = cx - a0 * cx - a1 * cy + shift_x
    b2 = cy - b0 * cx - b1 * cy + shift_y
    return np.array([a0, a1, a2, b0, b1, b2, 0.0, 0.0])


def warp_array(img: np.ndarray, m: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """OpenCV warp of (H, W, C) float32 by the 8 projective parameters (output -> input pixel),
    into ``out`` when given (a contiguous float32 array of the same shape)."""
    import cv2

    matrix = np.asarray(m[:6], np.float64).reshape(2, 3)
    h, w, c = img.shape
    if out is None:
        out = np.empty((h, w, c), np.float32)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    # OpenCV warps up to 4 channels at once; a grey image as (H, W)
    planes = [(img, out)] if c <= 4 else [(img[..., k], out[..., k]) for k in range(c)]
    for src, dst in planes:
        if c == 1:
            src, dst = src[..., 0], dst[..., 0]
        res = cv2.warpAffine(np.ascontiguousarray(src), matrix, (w, h),
                             dst=dst if dst.flags.c_contiguous else None, flags=flags,
                             borderMode=cv2.BORDER_REPLICATE)
        if not np.shares_memory(res, dst):  # OpenCV wrote elsewhere
            dst[...] = res.reshape(dst.shape)
    return out


def flip_and_warp(img: np.ndarray, seed: np.ndarray, aug, out: np.ndarray | None = None) -> np.ndarray:
    """Random flips, then rotation/zoom/shift/shear, drawn from ``seed`` (the epoch's seed and the
    image's position: a NumPy generator seeded by them). -> float32, into ``out`` when given."""
    rng = np.random.default_rng([int(v) & 0xFFFFFFFFFFFFFFFF for v in np.asarray(seed).ravel()])
    h, w = img.shape[:2]
    if out is None:
        out = np.empty(img.shape, np.float32)
    if aug.hflip and rng.random() < 0.5:
        img = img[:, ::-1]
    if aug.vflip and rng.random() < 0.5:
        img = img[::-1]
    if not aug.geometric:
        out[...] = img
        return out
    angle = math.radians(rng.uniform(-aug.rotation, aug.rotation))
    zoom_x, zoom_y = rng.uniform(1.0 - aug.zoom, 1.0 + aug.zoom, 2)
    shift_x, shift_y = rng.uniform(-aug.shift, aug.shift, 2) * (w, h)
    # degrees, as Keras's shear_range (ImageDataGenerator converts with deg2rad)
    shear = math.radians(rng.uniform(-aug.shear, aug.shear))
    m = affine_matrix(angle, zoom_x, zoom_y, shift_x, shift_y, shear, h, w)
    return warp_array(np.asarray(img, np.float32), m, out)


def flip_and_warp_batch(imgs: np.ndarray, seeds: np.ndarray, aug) -> np.ndarray:
    """:func:`flip_and_warp` on each image of a batch with its own seed (so the result does not
    depend on how the images are batched)."""
    out = np.empty(imgs.shape, np.float32)
    for j, (img, seed) in enumerate(zip(imgs, seeds)):
        flip_and_warp(img, seed, aug, out[j])
    return out


def augment_geometric_batch(imgs, seeds, aug):
    """Flips and rotation/zoom/shift/shear of a batch (B, H, W, C) float32, one NumPy/OpenCV call
    per batch (a call per image costs more than the warp itself)."""
    import tensorflow as tf

    if not (aug.hflip or aug.vflip or aug.geometric):
        return imgs
    out = tf.numpy_function(partial(flip_and_warp_batch, aug=aug), [imgs, seeds], tf.float32,
                            stateful=False)
    return tf.ensure_shape(out, imgs.shape)


def random_resized_crop(img, aug, seed):
    """COVID-CT's random crop of ``crop_scale``..1 of the area (aspect 3/4..4/3), resized back.
    One image (H, W, C) float32 -> same."""
    import tensorflow as tf

    if not aug.crop_scale:
        return img
    h, w = int(img.shape[0]), int(img.shape[1])
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(img), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
        min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(aug.crop_scale, 1.0), use_image_if_no_bounding_boxes=True)
    img = tf.image.resize(tf.slice(img, begin, size), (h, w), method="bilinear")
    return tf.ensure_shape(img, [h, w, img.shape[-1]])


def photometric_factors(aug, seed):
    """One image's brightness and contrast factors, each in [1 - x, 1 + x] -> float32 (2,)."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, num=2)
    one = tf.constant(1.0)
    b = _uniform(seeds[0], 1.0 - aug.brightness, 1.0 + aug.brightness) if aug.brightness else one
    c = _uniform(seeds[1], 1.0 - aug.contrast, 1.0 + aug.contrast) if aug.contrast else one
    return tf.stack([b, c])


def normalised_zero(raw, normalize: str, value_range=(0.0, 1.0)):
    """Where a raw value 0 lands after the pipeline's normalisation, per image of a raw batch
    (B, H, W, C) -> (B, 1, 1, 1): the point brightness scales about (:func:`apply_photometric`).
    ``standardize``: ``-mean / max(std, 1/sqrt(N))`` (``tf.image.per_image_standardization``'s
    constants); ``range``: ``-lo / (hi - lo)``; ``none``: 0."""
    import tensorflow as tf

    if normalize == "standardize":
        mean = tf.reduce_mean(raw, axis=[1, 2, 3], keepdims=True)
        std = tf.math.reduce_std(raw, axis=[1, 2, 3], keepdims=True)
        n = tf.cast(tf.reduce_prod(tf.shape(raw)[1:]), raw.dtype)
        return -mean / tf.maximum(std, tf.math.rsqrt(n))
    lo, hi = value_range if normalize == "range" else (0.0, 1.0)
    return tf.fill([tf.shape(raw)[0], 1, 1, 1], tf.constant(-lo / (hi - lo), raw.dtype))


def apply_photometric(imgs, factors, aug, zero=None):
    """Brightness then contrast (torchvision's ColorJitter, no clamp) on a normalised batch.

    Brightness multiplies the raw values by b; normalisation being affine, on normalised values
    that is a scaling by b about ``zero``, where a raw 0 lands (B, 1, 1, 1) (``-mean/std`` of each
    image under per-image standardisation, ``-lo/(hi - lo)`` for ``range``, 0 for ``none``; None:
    0). So brightness keeps its effect after standardisation and is not contrast (a scaling about
    the image's mean, which standardisation puts at 0): the result is ColorJitter on the raw image
    followed by a fixed normalisation with the image's own constants, as COVID-CT's authors
    normalised after the jitter.
    """
    import tensorflow as tf

    if aug.brightness:
        b = factors[:, 0, None, None, None]
        imgs = imgs * b if zero is None else zero + (imgs - zero) * b
    if aug.contrast:
        mean = tf.reduce_mean(imgs, axis=[1, 2, 3], keepdims=True)
        imgs = mean + (imgs - mean) * factors[:, 1, None, None, None]
    return imgs
