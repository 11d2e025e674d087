"""The papers' on-the-fly augmentation as stateless TensorFlow functions of an image and a seed.

``augment_geometric`` works on raw values before normalisation (COVID-CTset: flips, rotation,
zoom, shift, shear with Keras ImageDataGenerator's ``fill_mode="nearest"``; COVID-CT: random
resized crop). ``augment_photometric`` works after normalisation (COVID-CT: brightness and
contrast; before per-image standardisation they would be undone by it).
"""

from __future__ import annotations

import math


def _uniform(seed, lo, hi, shape=()):
    import tensorflow as tf

    return tf.random.stateless_uniform(shape, seed=seed, minval=lo, maxval=hi, dtype=tf.float32)


def affine_matrix(angle, zoom_x, zoom_y, shift_x, shift_y, shear, height, width):
    """The 8 projective-transform parameters mapping output pixels to input pixels.

    input = R(angle) . Shear(shear) . diag(zoom) . (output - centre) + centre + shift, so a zoom
    above 1 shows more of the image (Keras's convention).
    """
    import tensorflow as tf

    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    c, s = tf.cos(angle), tf.sin(angle)
    # R . Sh, with Sh = [[1, -sin(shear)], [0, cos(shear)]] as in Keras's apply_affine_transform
    m00, m01 = c, -c * tf.sin(shear) - s * tf.cos(shear)
    m10, m11 = s, -s * tf.sin(shear) + c * tf.cos(shear)
    a0, a1 = m00 * zoom_x, m01 * zoom_y
    b0, b1 = m10 * zoom_x, m11 * zoom_y
    a2 = cx - a0 * cx - a1 * cy + shift_x
    b2 = cy - b0 * cx - b1 * cy + shift_y
    return tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0])


def augment_geometric(img, aug, seed):
    """Flips, rotation/zoom/shift/shear and random resized crop. (H, W, C) float32 -> same."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, num=8)
    h, w = int(img.shape[0]), int(img.shape[1])
    if aug.hflip:
        img = tf.image.stateless_random_flip_left_right(img, seeds[0])
    if aug.vflip:
        img = tf.image.stateless_random_flip_up_down(img, seeds[1])
    if aug.geometric:
        angle = _uniform(seeds[2], -aug.rotation, aug.rotation) * (math.pi / 180.0)
        zoom = _uniform(seeds[3], 1.0 - aug.zoom, 1.0 + aug.zoom, (2,))
        shift = _uniform(seeds[4], -aug.shift, aug.shift, (2,)) * tf.constant([w, h], tf.float32)
        shear = _uniform(seeds[5], -aug.shear, aug.shear)
        m = affine_matrix(angle, zoom[0], zoom[1], shift[0], shift[1], shear, h, w)
        img = tf.raw_ops.ImageProjectiveTransformV3(
            images=img[None], transforms=m[None], output_shape=tf.constant([h, w]),
            fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")[0]
    if aug.crop_scale:
        begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(img), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seeds[6],
            min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3),
            area_range=(aug.crop_scale, 1.0), use_image_if_no_bounding_boxes=True)
        img = tf.image.resize(tf.slice(img, begin, size), (h, w), method="bilinear")
    return tf.ensure_shape(img, [h, w, img.shape[-1]])


def augment_photometric(img, aug, seed):
    """Brightness (multiply) and contrast (blend with the mean) factors in [1 - x, 1 + x]."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, num=2)
    if aug.brightness:
        img = img * _uniform(seeds[0], 1.0 - aug.brightness, 1.0 + aug.brightness)
    if aug.contrast:
        mean = tf.reduce_mean(img)
        img = mean + (img - mean) * _uniform(seeds[1], 1.0 - aug.contrast, 1.0 + aug.contrast)
    return img
