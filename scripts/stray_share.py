"""Which regions to drop as stray blobs, measured on dev val: how small against the largest, and how unsure.

python -m scripts.stray_share [MODEL] [--data ../shared/data/people_segmentation]

The default `subject=people` drops the regions of the model's map under service.subject.STRAY_SHARE of the
largest region's area whose mean probability is under STRAY_CONFIDENCE (a bag, a balloon, a lamp; also a
small person the model is unsure of). This runs the model once per photo, person-free crop and screen composite,
then the rest of the served path (the rule, the full-resolution refinement, edge colours, the 0.5 cut) for several
rules: mean IoU and boundary F on the val photos, how many photos a rule changes for better and for worse, mean
false area and false blobs on the person-free crops, edge error on the person pasted on a flat screen colour
(where every region is a person). Share 0 keeps every region (`subject=all`); the default rule's figures are
`training evaluate`'s own.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from scripts.dev_val import model_and_val_samples
from service import subject
from service.imaging import decode_image
from service.refine import full_resolution_alpha
from service.removal import CutoutOptions, Segmentation, alpha_curve, render_cutout
from training import edges
from training.evaluate import FALSE_BLOB_SHARE, MAX_EVAL_PIXELS, load_truth, on_screen, person_free_crop, score_image

DEFAULT_RULE = (subject.STRAY_SHARE, subject.STRAY_CONFIDENCE)
RULES = ((0.0, 1.0), (0.2, 1.01), (0.3, 1.01), (0.4, 1.01), (0.3, 0.9), DEFAULT_RULE, (0.3, 0.7))  # (share, confidence)
CHANGED = 0.001  # a photo's IoU moved by more than this


def served_alphas(segmenter, photo) -> dict[tuple, np.ndarray]:
    """Per rule, the served alpha (uint8) with that rule's strays dropped."""
    small = segmenter.predict_small(photo)
    if not subject.assess(small).person_found:
        return {rule: np.zeros((photo.height, photo.width), np.uint8) for rule in RULES}
    alphas = {}
    for share, confidence in RULES:
        kept = np.where(subject.without_strays(small, share, confidence), small, 0.0).astype(np.float32)
        alphas[share, confidence] = full_resolution_alpha(photo, kept, segmenter.info.input_size, alpha_curve(None), refine=True)
    return alphas


def screen_edge_errors(segmenter, photo: Image.Image, sample, index: int) -> dict[tuple, float]:
    """Per rule, the edge error of the cutout of the photo's person pasted on a flat screen colour."""
    pixels = np.asarray(photo)
    person, screen, composite = on_screen(pixels, sample, index)
    composite = Image.fromarray(composite)  # what the service decodes from its PNG
    errors = {}
    for rule, alpha in served_alphas(segmenter, composite).items():
        cutout = render_cutout(composite, Segmentation(alpha, True, 1.0), CutoutOptions()).image
        errors[rule] = edges.composite_scores(pixels, person, screen, np.asarray(cutout)[..., :3], alpha)["edge_error"]
    return errors


def main() -> None:
    segmenter, samples = model_and_val_samples(__doc__)
    photo_scores, crop_areas, screen_errors = ({rule: [] for rule in RULES} for _ in range(3))
    for index, sample in enumerate(samples):
        truth = load_truth(sample.mask)
        photo = decode_image(sample.image.read_bytes(), MAX_EVAL_PIXELS)
        for rule, alpha in served_alphas(segmenter, photo).items():
            scores = score_image((alpha >= 128).astype(np.float32), truth)
            photo_scores[rule].append((scores["iou"], scores["boundary_f"]))
        crop = person_free_crop(sample)
        if crop is not None:
            for rule, alpha in served_alphas(segmenter, crop).items():
                crop_areas[rule].append(float((alpha >= 128).mean()))
        for rule, error in screen_edge_errors(segmenter, photo, sample, index).items():
            screen_errors[rule].append(error)

    every_region = np.array(photo_scores[RULES[0]])[:, 0]
    header = ("share", "sure", "mean IoU", "boundary F", "better", "worse", "false area", "false blobs", "screen edge error")
    print(" ".join(f"{name:>{width}}" for name, width in zip(header, (6, 5, 9, 11, 7, 6, 11, 12, 18), strict=True)))
    for rule in RULES:
        scores, areas = np.array(photo_scores[rule]), np.array(crop_areas[rule])
        iou, boundary = scores.mean(axis=0)
        better, worse = int((scores[:, 0] > every_region + CHANGED).sum()), int((scores[:, 0] < every_region - CHANGED).sum())
        blobs = int((areas > FALSE_BLOB_SHARE).sum())
        share, confidence = rule
        print(
            f"{share:>6} {min(confidence, 1.0):>5} {iou:>9.4f} {boundary:>11.4f} {better:>7} {worse:>6} {areas.mean():>10.2%}"
            f" {blobs:>6} of {len(areas)} {np.mean(screen_errors[rule]):>18.3f}"
        )


if __name__ == "__main__":
    main()
