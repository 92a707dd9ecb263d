"""How the "no person found" threshold trades missed people against false blobs, for one model.

python -m scripts.no_person_threshold [MODEL] [--data ../shared/data/people_segmentation]

For each threshold on the share of the model's 96 px map at >= 0.5 (service.subject.MIN_PERSON_SHARE):
how many val photos would be called empty, and how many person-free crops (training.evaluate's
no-person crops) would still show a blob.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from service import Segmenter
from service.settings import DEFAULT_MODEL
from service.subject import PERSON, coarse_grid
from training import dataset
from training.evaluate import person_free_crop

THRESHOLDS = (0.002, 0.004, 0.006, 0.01, 0.015, 0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parent.parent.parent / "shared/data/people_segmentation"))
    args = parser.parse_args()

    segmenter = Segmenter(args.model, "cpu")
    photos, crops = [], []
    for sample in dataset.discover(args.data).val:
        photos.append(float((coarse_grid(segmenter.predict_small(Image.open(sample.image).convert("RGB"))) >= PERSON).mean()))
        crop = person_free_crop(sample)
        if crop is not None:
            crops.append(float((coarse_grid(segmenter.predict_small(crop)) >= PERSON).mean()))
    photos, crops = np.array(photos), np.array(crops)
    for threshold in THRESHOLDS:
        print(
            f"threshold {threshold}: val photos called empty {(photos < threshold).sum()}/{len(photos)}, "
            f"person-free crops keeping a blob {(crops >= threshold).sum()}/{len(crops)}"
        )


if __name__ == "__main__":
    main()
