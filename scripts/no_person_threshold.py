"""How the "no person found" threshold trades missed people against false blobs, for one model.

python -m scripts.no_person_threshold [MODEL] [--data ../shared/data/people_segmentation]

For each threshold on the share of the model's 96 px map at >= 0.5 (service.subject.MIN_PERSON_SHARE):
which val photos would be called empty (and how much of each the true person covers), how many
person-free crops (training.evaluate's no-person crops) would still report a person, and what is left
of the crops' false area: `training evaluate`'s no-person figures, read on the model's own map (the
served alpha adds the refinement's few edge pixels).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from scripts.dev_val import model_and_val_samples
from service.subject import PERSON, coarse_grid
from training.evaluate import FALSE_BLOB_SHARE, load_truth, person_free_crop

THRESHOLDS = (0.0, 0.0005, 0.001, 0.002, 0.004, 0.006, 0.01)


def main() -> None:
    segmenter, samples = model_and_val_samples(__doc__)
    photo_shares, true_shares, crop_shares, crop_areas = [], [], [], []
    for sample in samples:
        photo = Image.open(sample.image).convert("RGB")
        photo_shares.append(float((coarse_grid(segmenter.predict_small(photo)) >= PERSON).mean()))
        true_shares.append(float((load_truth(sample.mask) >= 0.5).mean()))
        crop = person_free_crop(sample)
        if crop is not None:
            small = segmenter.predict_small(crop)
            crop_shares.append(float((coarse_grid(small) >= PERSON).mean()))
            crop_areas.append(float((small >= PERSON).mean()))
    photo_shares, true_shares = np.array(photo_shares), np.array(true_shares)
    crop_shares, crop_areas = np.array(crop_shares), np.array(crop_areas)
    for threshold in THRESHOLDS:
        empty = photo_shares < threshold
        kept = crop_shares >= threshold
        served = np.where(kept, crop_areas, 0.0)
        truths = ", ".join(f"{share:.2%}" for share in np.sort(true_shares[empty]))
        print(
            f"threshold {threshold:.2%}: val photos called empty {empty.sum()}/{len(empty)}"
            f"{f' (true person {truths})' if truths else ''}; person-free crops reporting a person "
            f"{kept.sum()}/{len(kept)}, with a false blob (> {FALSE_BLOB_SHARE:.1%}) {(served > FALSE_BLOB_SHARE).sum()}, "
            f"mean false area {served.mean():.2%}"
        )


if __name__ == "__main__":
    main()
