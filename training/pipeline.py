"""tf.data input pipeline: parallel decode, the serving fit rule, cached pixels, augmentation, prefetch.

Decoded and fitted images are cached in memory after the first pass, so later epochs only pay for the
cheap augmentation ops and the 2 CPU cores go to the model.
"""

from __future__ import annotations

import tensorflow as tf

from service.fitting import LETTERBOX, MAX_ASPECT_VIEW_RATIO, PAD_RGB, STRETCH
from training.augmentation import ASPECT, BRIGHTNESS, CONTRAST, MIRROR_PAD, NEGATIVE_SHRINK, SATURATION, SCALE, ZOOM_OUT_SCALE
from training.dataset import Sample
from training.person_free import NO_BOX

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


def _scene_box(seeds: tf.Tensor, zoom_out_fraction: float, aspect: tf.Tensor) -> tf.Tensor:
    """A box of SCALE of each side, or (zoom_out_fraction of the time) ZOOM_OUT_SCALE sides: people small in the frame.

    aspect: the box's height / width in 0..1 units."""
    zoom_out = tf.random.stateless_uniform([], seeds[8]) < zoom_out_fraction
    scale = tf.where(
        zoom_out,
        tf.random.stateless_uniform([], seeds[9], *ZOOM_OUT_SCALE),
        tf.random.stateless_uniform([], seeds[0], *SCALE),
    )
    # Beyond the photo lies its mirror image (MIRROR_PAD of a side each way), so a box never leaves it:
    # a zoomed-out box of a very wide or tall photo's true proportions is shrunk to fit.
    reach = MIRROR_PAD
    longer_side = tf.sqrt(tf.maximum(aspect, 1.0 / aspect))
    scale = tf.minimum(scale, (1.0 + 2 * reach) / longer_side)
    box_h, box_w = scale * tf.sqrt(aspect), scale / tf.sqrt(aspect)
    top = tf.random.stateless_uniform(
        [],
        seeds[2],
        tf.maximum(tf.minimum(0.0, 1.0 - box_h), -reach),
        tf.minimum(tf.maximum(0.0, 1.0 - box_h), 1.0 + reach - box_h),
    )
    left = tf.random.stateless_uniform(
        [],
        seeds[3],
        tf.maximum(tf.minimum(0.0, 1.0 - box_w), -reach),
        tf.minimum(tf.maximum(0.0, 1.0 - box_w), 1.0 + reach - box_w),
    )
    return tf.stack([top, left, top + box_h, left + box_w])


def _negative_box(person_free: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
    """A random square of NEGATIVE_SHRINK of the photo's largest person-free square, inside it."""
    shrink = tf.random.stateless_uniform([], seeds[10], *NEGATIVE_SHRINK)
    height, width = (person_free[2] - person_free[0]) * shrink, (person_free[3] - person_free[1]) * shrink
    top = person_free[0] + tf.random.stateless_uniform([], seeds[12]) * (person_free[2] - person_free[0] - height)
    left = person_free[1] + tf.random.stateless_uniform([], seeds[13]) * (person_free[3] - person_free[1] - width)
    return tf.stack([top, left, top + height, left + width])


def augment(
    image: tf.Tensor,
    mask: tf.Tensor,
    size: int,
    seed: tf.Tensor,
    person_free: tf.Tensor | None = None,
    negative_fraction: float = 0.0,
    zoom_out_fraction: float = 0.0,
    photo_aspect: tf.Tensor | None = None,
    true_aspect_fraction: float = 0.0,
    own_shape_fraction: float = 0.0,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Random scale and crop, horizontal flip, brightness/contrast/saturation jitter (stateless, seeded).

    person_free: the photo's largest person-free square (top, left, bottom, right in 0..1; zeros: none).
    negative_fraction of the crops come from it: the model must learn that a photo region without a
    person holds nothing to cut out, however much something in it stands out.
    photo_aspect: the photo's width / height before `image` was stretched to a square; true_aspect_fraction
    of the crops undo the stretch, so the model also learns people in their true proportions.
    own_shape_fraction of the crops are not squares but the shape of the service's aspect view of the photo
    (about size x size pixels at the photo's own proportions), undistorted: the input the second view gives.
    With it the crops' shapes differ, so batch them with `batch_by_shape`.
    """
    seeds = tf.random.experimental.stateless_split(seed, 14)
    aspect = tf.random.stateless_uniform([], seeds[1], *ASPECT)
    crop_shape = tf.constant([size, size])
    if photo_aspect is not None and true_aspect_fraction > 0:
        # A seed of its own, so that runs without true-aspect crops draw exactly what they drew before.
        undistorted = tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(seed, 14)) < true_aspect_fraction
        aspect = tf.where(undistorted, tf.cast(photo_aspect, tf.float32), aspect)
    if photo_aspect is not None and own_shape_fraction > 0:
        own_shape = tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(seed, 15)) < own_shape_fraction
        view_shape = aspect_view_shape(photo_aspect, size)
        view_aspect = tf.cast(view_shape[1], tf.float32) / tf.cast(view_shape[0], tf.float32)
        # In the stretched square's 0..1 units a box of height / width photo_aspect / view_aspect shows the
        # photo undistorted at the view's width / height.
        aspect = tf.where(own_shape, tf.cast(photo_aspect, tf.float32) / view_aspect, aspect)
        # A person-free box below stays square and is stretched to this shape: its mask is empty either way.
        crop_shape = tf.where(own_shape, view_shape, crop_shape)
    box = _scene_box(seeds, zoom_out_fraction, aspect)
    if person_free is not None and negative_fraction > 0:
        has_square = person_free[2] > person_free[0]
        negative = tf.logical_and(has_square, tf.random.stateless_uniform([], seeds[11]) < negative_fraction)
        box = tf.where(negative, _negative_box(person_free, seeds), box)
    pad_h = tf.cast(tf.cast(tf.shape(image)[0], tf.float32) * MIRROR_PAD, tf.int32)
    pad_w = tf.cast(tf.cast(tf.shape(image)[1], tf.float32) * MIRROR_PAD, tf.int32)
    paddings = [[pad_h, pad_h], [pad_w, pad_w], [0, 0]]
    frac_h = tf.cast(pad_h, tf.float32) / tf.cast(tf.shape(image)[0], tf.float32)
    frac_w = tf.cast(pad_w, tf.float32) / tf.cast(tf.shape(image)[1], tf.float32)
    image, mask = tf.pad(image, paddings, mode="REFLECT"), tf.pad(mask, paddings, mode="REFLECT")
    box = tf.stack(
        [
            (box[0] + frac_h) / (1 + 2 * frac_h),
            (box[1] + frac_w) / (1 + 2 * frac_w),
            (box[2] + frac_h) / (1 + 2 * frac_h),
            (box[3] + frac_w) / (1 + 2 * frac_w),
        ]
    )
    image = tf.image.crop_and_resize(image[None], box[None], [0], crop_shape)[0]
    mask = tf.image.crop_and_resize(mask[None], box[None], [0], crop_shape)[0]

    flip = tf.random.stateless_uniform([], seeds[4]) < 0.5
    image = tf.cond(flip, lambda: tf.image.flip_left_right(image), lambda: image)
    mask = tf.cond(flip, lambda: tf.image.flip_left_right(mask), lambda: mask)

    unit = image / 255.0
    unit = tf.image.stateless_random_brightness(unit, BRIGHTNESS, seeds[5])
    unit = tf.image.stateless_random_contrast(unit, *CONTRAST, seeds[6])
    unit = tf.image.stateless_random_saturation(unit, *SATURATION, seeds[7])
    return tf.clip_by_value(unit, 0.0, 1.0) * 255.0, tf.clip_by_value(mask, 0.0, 1.0)


def aspect_view_shape(photo_aspect: tf.Tensor, size: int) -> tf.Tensor:
    """TensorFlow twin of service.fitting.aspect_area_shape: (height, width) of the aspect view, int32."""
    aspect = tf.clip_by_value(tf.cast(photo_aspect, tf.float32), 1 / MAX_ASPECT_VIEW_RATIO, MAX_ASPECT_VIEW_RATIO)
    sides = tf.stack([size / tf.sqrt(aspect), size * tf.sqrt(aspect)])
    return tf.maximum(16, tf.cast(tf.round(sides / 16), tf.int32) * 16)


def batch_by_shape(pairs: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """Batches of pairs of one shape each, from a stream of pairs of several shapes."""
    return pairs.group_by_window(
        key_func=lambda image, mask: tf.cast(tf.shape(image)[0] * 100_000 + tf.shape(image)[1], tf.int64),
        reduce_func=lambda key, window: window.batch(batch_size, drop_remainder=True),
        window_size=batch_size,
    )


def _decoded_pairs(samples: list[Sample]) -> tf.data.Dataset:
    paths = tf.data.Dataset.from_tensor_slices(([str(s.image) for s in samples], [str(s.mask) for s in samples]))
    return paths.map(decode_pair, num_parallel_calls=AUTOTUNE)


def _fitted_pairs(samples: list[Sample], side: int, fit_mode: str) -> tf.data.Dataset:
    """Each sample's photo and mask, decoded and fitted to a side x side square."""
    return _decoded_pairs(samples).map(lambda i, m: fit_to_square(i, m, side, fit_mode), num_parallel_calls=AUTOTUNE)


def _fitted_aspect(image: tf.Tensor, fit_mode: str) -> tf.Tensor:
    """Width / height a crop of the fitted square must have to show the photo undistorted."""
    if fit_mode != STRETCH:  # a letterboxed photo keeps its proportions
        return tf.constant(1.0)
    shape = tf.cast(tf.shape(image), tf.float32)
    return shape[1] / shape[0]


def _augmented_stream(
    samples: list[Sample],
    boxes: list[tuple[float, float, float, float]],
    size: int,
    fit_mode: str,
    seed: int,
    negative_fraction: float,
    zoom_out_fraction: float,
    true_aspect_fraction: float = 0.0,
    own_shape_fraction: float = 0.0,
) -> tf.data.Dataset:
    """Unbatched augmented (image, mask) pairs of `samples`, shuffled, forever."""
    side = round(size * CACHE_MARGIN)

    def fitted(image, mask):  # uint8 halves the cache; augmentation works in float
        fitted_image, fitted_mask = fit_to_square(image, mask, side, fit_mode)
        return tf.cast(tf.round(fitted_image), tf.uint8), fitted_mask, _fitted_aspect(image, fit_mode)

    ds = _decoded_pairs(samples).map(fitted, num_parallel_calls=AUTOTUNE)
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.from_tensor_slices(tf.constant(boxes, tf.float32)))).cache()
    ds = ds.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True).repeat()
    counter = tf.data.Dataset.counter()
    return tf.data.Dataset.zip((ds, counter)).map(
        lambda item, n: augment(
            tf.cast(item[0][0], tf.float32),
            item[0][1],
            size,
            tf.stack([tf.cast(seed, tf.int64), n]),
            person_free=item[1],
            negative_fraction=negative_fraction,
            zoom_out_fraction=zoom_out_fraction,
            photo_aspect=item[0][2],
            true_aspect_fraction=true_aspect_fraction,
            own_shape_fraction=own_shape_fraction,
        ),
        num_parallel_calls=AUTOTUNE,
    )


def make_dataset(
    samples: list[Sample],
    size: int,
    batch_size: int,
    fit_mode: str = STRETCH,
    training: bool = False,
    seed: int = 0,
    person_free_boxes: list[tuple[float, float, float, float]] | None = None,
    negative_fraction: float = 0.0,
    zoom_out_fraction: float = 0.0,
    hard_negatives: tuple[list[Sample], list[tuple[float, float, float, float]]] | None = None,
    hard_negative_fraction: float = 0.0,
    hard_photos: list[Sample] | None = None,
    hard_photo_fraction: float = 0.0,
    true_aspect_fraction: float = 0.0,
    own_shape_fraction: float = 0.0,
) -> tf.data.Dataset:
    """Batches of (float32 RGB 0..255, float32 mask 0..1). Training streams repeat forever, shuffled.

    person_free_boxes: one per sample (see training.person_free), for negative_fraction > 0.
    hard_negatives: (samples, their person-free boxes) (see training.hard_negatives): hard_negative_fraction
    of the crops are drawn from these boxes alone, on top of negative_fraction.
    hard_photos: photos a model still gets wrong (see training.hard_photos): hard_photo_fraction of the crops
    are drawn from them, augmented like any photo.
    true_aspect_fraction: share of the photos' crops shown in their true proportions (see augment).
    own_shape_fraction: share of the photos' crops at the shape of the service's aspect view (see augment);
    each batch then holds crops of one shape.
    """
    if not training:
        return _fitted_pairs(samples, size, fit_mode).cache().batch(batch_size).prefetch(AUTOTUNE)
    boxes = person_free_boxes or [NO_BOX] * len(samples)
    ds = _augmented_stream(
        samples, boxes, size, fit_mode, seed, negative_fraction, zoom_out_fraction, true_aspect_fraction, own_shape_fraction
    )
    extra = []  # (stream, share of the crops) drawn beside the photos' own
    if hard_negatives and hard_negative_fraction > 0:
        extra.append((_augmented_stream(*hard_negatives, size, fit_mode, seed + 1, 1.0, 0.0), hard_negative_fraction))
    if hard_photos and hard_photo_fraction > 0:
        hard = _augmented_stream(
            hard_photos,
            [NO_BOX] * len(hard_photos),
            size,
            fit_mode,
            seed + 2,
            0.0,
            zoom_out_fraction,
            true_aspect_fraction,
            own_shape_fraction,
        )
        extra.append((hard, hard_photo_fraction))
    if extra:
        weights = [1.0 - sum(share for _, share in extra)] + [share for _, share in extra]
        ds = tf.data.Dataset.sample_from_datasets([ds] + [stream for stream, _ in extra], weights=weights, seed=seed)
    batched = batch_by_shape(ds, batch_size) if own_shape_fraction > 0 else ds.batch(batch_size, drop_remainder=True)
    return batched.prefetch(AUTOTUNE)
