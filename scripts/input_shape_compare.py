"""Stretch every photo to the model's square, or keep its aspect ratio: which input shape the weights read best.

python -m scripts.input_shape_compare WEIGHTS [--data ../shared/data/people_segmentation] [--size 416] [--limit N]

The service stretches each photo to size x size (`cutout.fit = stretch`), so a 448 x 298 photo is squeezed
sideways and drawn out upwards. This runs the same Keras weights (a release-run's `best.weights.h5`, or
`models/cutout-person.weights.h5`) in float32, mirror-averaged, on the dev val photos three ways and prints the
mean IoU of the raw map cut at 0.5 (no refinement, so below the served figures):
  stretch       size x size, as served;
  aspect-area   the photo's aspect ratio kept, about as many pixels as size x size (512 x 336 for 448 x 298);
  aspect-native the photo's aspect ratio kept, the long side 448 (the photos' own size; fewer pixels, faster).
Sides are rounded to multiples of 16. Then two views of different shapes averaged: one rule's plain view with
another's mirrored one (the cost of the served mirror pair when both have about size x size pixels), and all four
views of two rules (twice the cost). Needs the [train] extra (TensorFlow).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
from PIL import Image

from scripts.dev_val import DEFAULT_DATA
from service.fitting import aspect_area_shape, multiple_of_16
from training import dataset
from training.evaluate import load_truth, score_image

NATIVE_LONG_SIDE = 448  # the dev val photos are at most this wide or tall
RULES = ("stretch", "aspect-area", "aspect-native")


def input_shape(rule: str, width: int, height: int, size: int) -> tuple[int, int]:
    """(height, width) of the model input for a width x height photo."""
    if rule == "stretch":
        return size, size
    if rule == "aspect-area":
        return aspect_area_shape(width, height, size)  # the service's aspect view
    if rule == "aspect-native":
        scale = NATIVE_LONG_SIDE / max(width, height)
        return multiple_of_16(height * scale), multiple_of_16(width * scale)
    raise ValueError(f"unknown rule {rule!r}; expected one of {RULES}")


def views(weights: Path, samples: list[dataset.Sample], rule: str, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per photo, the plain and the mirrored view's probability at the photo's size (float16)."""
    import keras

    from training.model import build_model

    keras.mixed_precision.set_global_policy("float32")
    models = {}  # one build per input shape; the photos come in a handful of shapes
    per_photo = []
    for sample in samples:
        with Image.open(sample.image) as opened:
            photo = opened.convert("RGB")
        shape = input_shape(rule, photo.width, photo.height, size)
        if shape not in models:
            models[shape] = build_model(shape, backbone_weights=None)
            models[shape].load_weights(weights)
        x = np.asarray(photo.resize(shape[::-1], Image.BILINEAR), dtype=np.float32)
        both = np.asarray(models[shape].predict_on_batch(np.stack([x, x[:, ::-1]])))[..., 0]
        plain, mirrored = both[0], np.ascontiguousarray(both[1][:, ::-1])
        per_photo.append(
            tuple(np.asarray(Image.fromarray(p).resize(photo.size, Image.BILINEAR), np.float16) for p in (plain, mirrored))
        )
    return per_photo


def mean_iou(truths: list[np.ndarray], *view_sets: list[np.ndarray]) -> float:
    """Mean IoU of the average of the given views (each a list over the photos), cut at 0.5."""
    ious = []
    for i, truth in enumerate(truths):
        probability = np.mean([views[i].astype(np.float32) for views in view_sets], axis=0)
        ious.append(score_image(probability >= 0.5, truth)["iou"])
    return round(float(np.mean(ious)), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", type=Path)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--limit", type=int, help="the first N val photos only")
    parser.add_argument("--rules", default=",".join(RULES))
    args = parser.parse_args()
    samples = dataset.validate(dataset.discover(args.data).val, "val")[: args.limit]
    truths = [load_truth(sample.mask) >= 0.5 for sample in samples]
    rules = args.rules.split(",")
    plain, mirrored = {}, {}
    for rule in rules:
        plain[rule], mirrored[rule] = zip(*views(args.weights, samples, rule, args.size), strict=True)
        print(json.dumps({"views": f"{rule} + mirrored", "mean_iou": mean_iou(truths, plain[rule], mirrored[rule])}))
    for first, second in itertools.permutations(rules, 2):
        print(json.dumps({"views": f"{first} + {second} mirrored", "mean_iou": mean_iou(truths, plain[first], mirrored[second])}))
    for first, second in itertools.combinations(rules, 2):
        four = (plain[first], mirrored[first], plain[second], mirrored[second])
        print(json.dumps({"views": f"{first} + {second}, each also mirrored", "mean_iou": mean_iou(truths, *four)}))


if __name__ == "__main__":
    main()
