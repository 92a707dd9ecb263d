"""How small a region must be, against the largest, to be dropped as a stray blob, measured on dev val.

python -m scripts.stray_share [MODEL] [--data ../shared/data/people_segmentation]

The default `subject=people` drops the regions of the model's map under service.subject.STRAY_SHARE of the
largest region's area (a bag, a balloon, a lamp; also a person that much smaller than the largest one). This runs
the model once per photo and person-free crop and the rest of the served path (the rule, the full-resolution
refinement, the 0.5 cut) for several shares: mean IoU and boundary F on the val photos, how many photos the rule
changes for better and for worse, mean false area and false blobs on the person-free crops. Share 0 keeps every
region (`subject=all`); at STRAY_SHARE the figures are `training evaluate`'s own.
"""

from __future__ import annotations

import numpy as np

from scripts.dev_val import model_and_val_samples
from service import subject
from service.imaging import decode_image
from service.refine import full_resolution_alpha
from training.evaluate import FALSE_BLOB_SHARE, MAX_EVAL_PIXELS, load_truth, person_free_crop, score_image

SHARES = (0.0, 0.1, 0.2, subject.STRAY_SHARE, 0.4, 0.5)
CHANGED = 0.001  # a photo's IoU moved by more than this


def served_masks(segmenter, photo) -> dict[float, np.ndarray]:
    """Per share, the served mask (alpha >= 128) with the strays under that share dropped."""
    small = segmenter.predict_small(photo)
    if not subject.assess(small).person_found:
        return {share: np.zeros((photo.height, photo.width), bool) for share in SHARES}
    as_bytes = lambda prob: np.round(prob * 255).astype(np.uint8)  # noqa: E731
    masks = {}
    for share in SHARES:
        kept = np.where(subject.without_strays(small, share), small, 0.0).astype(np.float32)
        masks[share] = full_resolution_alpha(photo, kept, segmenter.info.input_size, as_bytes, refine=True) >= 128
    return masks


def main() -> None:
    segmenter, samples = model_and_val_samples(__doc__)
    photo_scores = {share: [] for share in SHARES}
    crop_areas = {share: [] for share in SHARES}
    for sample in samples:
        truth = load_truth(sample.mask)
        for share, mask in served_masks(segmenter, decode_image(sample.image.read_bytes(), MAX_EVAL_PIXELS)).items():
            scores = score_image(mask.astype(np.float32), truth)
            photo_scores[share].append((scores["iou"], scores["boundary_f"]))
        crop = person_free_crop(sample)
        if crop is not None:
            for share, mask in served_masks(segmenter, crop).items():
                crop_areas[share].append(float(mask.mean()))

    every_region = np.array(photo_scores[0.0])[:, 0]
    print(f"{'share':>6} {'mean IoU':>9} {'boundary F':>11} {'better':>7} {'worse':>6} {'false area':>11} {'false blobs':>12}")
    for share in SHARES:
        scores, areas = np.array(photo_scores[share]), np.array(crop_areas[share])
        iou, boundary = scores.mean(axis=0)
        better, worse = int((scores[:, 0] > every_region + CHANGED).sum()), int((scores[:, 0] < every_region - CHANGED).sum())
        blobs = int((areas > FALSE_BLOB_SHARE).sum())
        print(f"{share:>6} {iou:>9.4f} {boundary:>11.4f} {better:>7} {worse:>6} {areas.mean():>10.2%} {blobs:>6} of {len(areas)}")


if __name__ == "__main__":
    main()
