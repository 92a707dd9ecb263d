"""tf.data input pipeline: parallel decode, the serving fit rule, cached pixels, augmentation, prefetch.

Decoded and fitted images are cached in memory after the first pass, so later epochs only pay for the
cheap augmentation ops and the 2 CPU cores go to the model.
"""

from __future__ import annotations

import tensorflow as tf

from service.fitting import LETTERBOX, PAD_RGB, STRETCH
from training.dataset import Sample

AUTOTUNE = tf.data.AUTOTUNE
# Cached images are fitted slightly larger than the model input so random crops keep detail.
CACHE_MARGIN = 1.25


def decode_pair(image_path: tf.Tensor, mask_path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Read an image (any mode -> RGB uint8) and its mask (0/1, 0/255 or soft -> float 0..1)."""
    image = tf.io.decode_image(tf.io.read_file(image_path), channels=3, expand_animations=False)
    mask = tf.cast(tf.io.decode_image(tf.io.read_file(mask_path), channels=1, expand_animations=False), tf.float32)
    # The Kaggle masks are 0/1; other datasets store 0/255 or soft alpha.
    mask = tf.cond(tf.reduce_max(mask) > 1.0, lambda: mask / 255.0, lambda: mask)
    image.set_shape([None, None, 3])
    mask.set_shape([None, None, 1])
    return image, mask


def fit_to_square(image: tf.Tensor, mask: tf.Tensor, size: int, mode: str) -> tuple[tf.Tensor, tf.Tensor]:
    """TensorFlow twin of service.fitting.fit_image: returns float image 0..255 and mask at size x size."""
    image = tf.cast(image, tf.float32)
    if mode == STRETCH:
        image = tf.image.resize(image, (size, size), antialias=True)
        mask = tf.image.resize(mask, (size, size), antialias=True)
    elif mode == LETTERBOX:
        pad = tf.constant(PAD_RGB, tf.float32)
        image = tf.image.resize_with_pad(image - pad, size, size, antialias=True) + pad
        mask = tf.image.resize_with_pad(mask, size, size, antialias=True)
    else:
        raise ValueError(f"unknown fit mode {mode!r}")
    return tf.clip_by_value(image, 0.0, 255.0), tf.clip_by_value(mask, 0.0, 1.0)


def augment(image: tf.Tensor, mask: tf.Tensor, size: int, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Random scale and crop, horizontal flip, brightness/contrast/saturation jitter (stateless, seeded)."""
    seeds = tf.random.experimental.stateless_split(seed, 8)
    # A box of 55-100% of each side (zoom in) or up to 115% (zoom out, padded), anywhere in the image.
    scale = tf.random.stateless_uniform([], seeds[0], 0.55, 1.15)
    aspect = tf.random.stateless_uniform([], seeds[1], 0.85, 1.18)
    box_h, box_w = scale * tf.sqrt(aspect), scale / tf.sqrt(aspect)
    top = tf.random.stateless_uniform([], seeds[2], tf.minimum(0.0, 1.0 - box_h), tf.maximum(0.0, 1.0 - box_h))
    left = tf.random.stateless_uniform([], seeds[3], tf.minimum(0.0, 1.0 - box_w), tf.maximum(0.0, 1.0 - box_w))
    box = tf.reshape(tf.stack([top, left, top + box_h, left + box_w]), [1, 4])
    pad = tf.constant(PAD_RGB, tf.float32)
    image = tf.image.crop_and_resize((image - pad)[None], box, [0], (size, size))[0] + pad
    mask = tf.image.crop_and_resize(mask[None], box, [0], (size, size))[0]

    flip = tf.random.stateless_uniform([], seeds[4]) < 0.5
    image = tf.cond(flip, lambda: tf.image.flip_left_right(image), lambda: image)
    mask = tf.cond(flip, lambda: tf.image.flip_left_right(mask), lambda: mask)

    unit = image / 255.0
    unit = tf.image.stateless_random_brightness(unit, 0.15, seeds[5])
    unit = tf.image.stateless_random_contrast(unit, 0.75, 1.25, seeds[6])
    unit = tf.image.stateless_random_saturation(unit, 0.7, 1.3, seeds[7])
    return tf.clip_by_value(unit, 0.0, 1.0) * 255.0, tf.clip_by_value(mask, 0.0, 1.0)


def make_dataset(
    samples: list[Sample],
    size: int,
    batch_size: int,
    fit_mode: str = STRETCH,
    training: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of (float32 RGB 0..255, float32 mask 0..1). Training streams repeat forever, shuffled."""
    paths = tf.data.Dataset.from_tensor_slices(([str(s.image) for s in samples], [str(s.mask) for s in samples]))
    cached_size = round(size * CACHE_MARGIN) if training else size
    ds = paths.map(decode_pair, num_parallel_calls=AUTOTUNE)
    ds = ds.map(lambda i, m: fit_to_square(i, m, cached_size, fit_mode), num_parallel_calls=AUTOTUNE)
    if training:
        # uint8 halves the cache; augmentation works in float.
        ds = ds.map(lambda i, m: (tf.cast(tf.round(i), tf.uint8), m), num_parallel_calls=AUTOTUNE).cache()
        ds = ds.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True).repeat()
        counter = tf.data.Dataset.counter()
        ds = tf.data.Dataset.zip((ds, counter)).map(
            lambda pair, n: augment(tf.cast(pair[0], tf.float32), pair[1], size, tf.stack([tf.cast(seed, tf.int64), n])),
            num_parallel_calls=AUTOTUNE,
        )
    else:
        ds = ds.cache()
    return ds.batch(batch_size, drop_remainder=training).prefetch(AUTOTUNE)
