"""Stretch every photo to the model's square, or keep its aspect ratio: which input shape the weights read best.

python -m scripts.input_shape_compare WEIGHTS [--data ../shared/data/people_segmentation] [--size 416] [--limit N]

The service stretches each photo to size x size (`cutout.fit = stretch`), so a 448 x 298 photo is squeezed
sideways and drawn out upwards. This runs the same Keras weights (a release-run's `best.weights.h5`, or
`models/cutout-person.weights.h5`) in float32, mirror-averaged, on the dev val photos three ways and prints the
mean IoU of the raw map cut at 0.5 (no refinement, so below the served figures):
  stretch       size x size, as served;
  aspect-area   the photo's aspect ratio kept, about as many pixels as size x size (512 x 336 for 448 x 298);
  aspect-native the photo's aspect ratio kept, the long side 448 (the photos' own size; fewer pixels, faster).
Sides are rounded to multiples of 16. Needs the [train] extra (TensorFlow).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from scripts.dev_val import DEFAULT_DATA
from training import dataset
from training.evaluate import load_truth, score_image

NATIVE_LONG_SIDE = 448  # the dev val photos are at most this wide or tall
RULES = ("stretch", "aspect-area", "aspect-native")


def multiple_of_16(length: float) -> int:
    return max(16, int(round(length / 16)) * 16)


def input_shape(rule: str, width: int, height: int, size: int) -> tuple[int, int]:
    """(height, width) of the model input for a width x height photo."""
    if rule == "stretch":
        return size, size
    if rule == "aspect-area":
        aspect = width / height
        return multiple_of_16(size / aspect**0.5), multiple_of_16(size * aspect**0.5)
    if rule == "aspect-native":
        scale = NATIVE_LONG_SIDE / max(width, height)
        return multiple_of_16(height * scale), multiple_of_16(width * scale)
    raise ValueError(f"unknown rule {rule!r}; expected one of {RULES}")


def mean_iou(weights: Path, samples: list[dataset.Sample], rule: str, size: int) -> float:
    import keras

    from training.model import build_model

    keras.mixed_precision.set_global_policy("float32")
    models = {}  # one build per input shape; the photos come in a handful of shapes
    ious = []
    for sample in samples:
        with Image.open(sample.image) as opened:
            photo = opened.convert("RGB")
        shape = input_shape(rule, photo.width, photo.height, size)
        if shape not in models:
            models[shape] = build_model(shape, backbone_weights=None)
            models[shape].load_weights(weights)
        x = np.asarray(photo.resize(shape[::-1], Image.BILINEAR), dtype=np.float32)
        both = np.asarray(models[shape].predict_on_batch(np.stack([x, x[:, ::-1]])))[..., 0]
        probability = (both[0] + both[1][:, ::-1]) / 2
        full = np.asarray(Image.fromarray(probability).resize(photo.size, Image.BILINEAR))
        ious.append(score_image(full >= 0.5, load_truth(sample.mask) >= 0.5)["iou"])
    return float(np.mean(ious))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", type=Path)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--limit", type=int, help="the first N val photos only")
    parser.add_argument("--rules", default=",".join(RULES))
    args = parser.parse_args()
    samples = dataset.validate(dataset.discover(args.data).val, "val")[: args.limit]
    for rule in args.rules.split(","):
        score = mean_iou(args.weights, samples, rule, args.size)
        print(json.dumps({"rule": rule, "photos": len(samples), "mean_iou": round(score, 4)}))


if __name__ == "__main__":
    main()
