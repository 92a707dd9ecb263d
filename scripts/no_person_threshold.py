"""How the "no person found" threshold trades missed people against false blobs, for one model.

python -m scripts.no_person_threshold [MODEL] [--data ../shared/data/people_segmentation]

For each threshold on the share of the model's 96 px map at >= 0.5 (service.subject.MIN_PERSON_SHARE):
which val photos would be called empty (and how much of each the true person covers), how many
person-free crops (training.evaluate's no-person crops) would still report a person, and what is left
of the crops' false area: `training evaluate`'s no-person figures, read on the model's own map (the
served alpha adds the refinement's few edge pixels).

Then the same trade for a rule on each region instead of the whole photo: drop the regions of the 96 px map
whose peak probability is below a cut. It would remove a false blob only if the model were less sure of
blobs than of people; the table says how many true person regions each cut would drop.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from scripts.dev_val import model_and_val_samples
from service.subject import PERSON, coarse_grid, label_regions
from training.evaluate import FALSE_BLOB_SHARE, load_truth, person_free_crop

THRESHOLDS = (0.0, 0.0005, 0.001, 0.002, 0.004, 0.006, 0.01)
PEAK_CUTS = (0.0, 0.6, 0.8, 0.9, 0.95, 0.98)


def regions(grid: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """The person regions of a 96 px map: (cells, peak probability) each."""
    labels, count = label_regions(grid >= PERSON)
    region_cells = (labels == k for k in range(1, count + 1))
    return [(cells, float(grid[cells].max())) for cells in region_cells]


def true_region_shares(grid: np.ndarray, truth: np.ndarray) -> list[tuple[float, float]]:
    """(share of the map, peak) of each region that lies mostly on the true person."""
    truth_grid = np.asarray(Image.fromarray(truth.astype(np.float32)).resize(grid.shape[::-1], Image.BILINEAR)) >= 0.5
    return [(float(cells.mean()), peak) for cells, peak in regions(grid) if (cells & truth_grid).sum() > 0.5 * cells.sum()]


def print_peak_cuts(true_regions: list[tuple[float, float]], crop_regions: list[list[tuple[float, float]]]) -> None:
    for cut in PEAK_CUTS:
        dropped = [share for share, peak in true_regions if peak < cut]
        left = np.array([sum(share for share, peak in crop if peak >= cut) for crop in crop_regions])
        print(
            f"region peak cut {cut:.2f}: true person regions dropped {len(dropped)}/{len(true_regions)}"
            f" (largest {max(dropped, default=0.0):.2%} of its photo); person-free crops with a false blob"
            f" {(left > FALSE_BLOB_SHARE).sum()}, mean false area {left.mean():.2%} (on the 96 px map)"
        )


def main() -> None:
    segmenter, samples = model_and_val_samples(__doc__)
    photo_shares, true_shares, crop_shares, crop_areas = [], [], [], []
    true_regions, crop_regions = [], []
    for sample in samples:
        photo = Image.open(sample.image).convert("RGB")
        grid, truth = coarse_grid(segmenter.predict_small(photo)), load_truth(sample.mask) >= 0.5
        photo_shares.append(float((grid >= PERSON).mean()))
        true_shares.append(float(truth.mean()))
        true_regions += true_region_shares(grid, truth)
        crop = person_free_crop(sample)
        if crop is not None:
            small = segmenter.predict_small(crop)
            crop_grid = coarse_grid(small)
            crop_shares.append(float((crop_grid >= PERSON).mean()))
            crop_areas.append(float((small >= PERSON).mean()))
            crop_regions.append([(float(cells.mean()), peak) for cells, peak in regions(crop_grid)])
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
    print_peak_cuts(true_regions, crop_regions)


if __name__ == "__main__":
    main()
