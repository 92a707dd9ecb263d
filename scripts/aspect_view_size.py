"""The served path with the aspect view given another pixel budget than the square's, measured on dev val.

python -m scripts.aspect_view_size SIZE [MODEL] [--data ../shared/data/people_segmentation] [--parts photos,no_person]

The service runs the mirrored aspect view with about as many pixels as the model's square (`cutout.input_size`
squared; service/segmenter.py). This runs `training evaluate` with the view at about SIZE x SIZE pixels instead
(the square stays as it is), to see whether more pixels in the second view pay for their cost.
"""

from __future__ import annotations

import argparse

import service.segmenter
from scripts.dev_val import DEFAULT_DATA
from service.fitting import aspect_area_shape


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("size", type=int, help="side of the square whose pixel count the aspect view gets")
    parser.add_argument("model", nargs="?", default="models/cutout-person.onnx")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--parts", default="photos,no_person")
    args = parser.parse_args()

    # The segmenter looks the rule up at call time, so replacing it here changes the view and nothing else.
    service.segmenter.aspect_area_shape = lambda width, height, _size: aspect_area_shape(width, height, args.size)
    from training.cli import main as training_main

    return training_main(["evaluate", args.model, "--data", args.data, "--parts", args.parts])


if __name__ == "__main__":
    raise SystemExit(main())
