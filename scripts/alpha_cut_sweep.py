"""Where the served alpha should cut "person" from "not person", for one model, measured on dev val.

python -m scripts.alpha_cut_sweep [MODEL] [--data ../shared/data/people_segmentation]

The default alpha curve (service.matte.shape_alpha) puts probability 0.5 at alpha 128, the cut every figure of
`training evaluate` reads. This runs the served path once per photo and person-free crop (the model, "no person
found", the full-resolution refinement) and scores other cuts of the same refined probability: mean IoU and
boundary F on the val photos, mean false area and false blobs on the person-free crops. At 0.5 the figures are
`training evaluate`'s own.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from scripts.dev_val import model_and_val_samples
from service import Segmenter, subject
from service.imaging import decode_image
from service.refine import full_resolution_alpha
from training.evaluate import FALSE_BLOB_SHARE, MAX_EVAL_PIXELS, load_truth, person_free_crop, score_image

CUTS = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65)


def served_probability(segmenter: Segmenter, photo: Image.Image) -> np.ndarray:
    """The refined person probability the service shapes into alpha, as bytes (0 where no person is found)."""
    small = segmenter.predict_small(photo)
    if not subject.assess(small).person_found:
        return np.zeros((photo.height, photo.width), np.uint8)
    as_bytes = lambda prob: np.round(prob * 255).astype(np.uint8)  # noqa: E731
    return full_resolution_alpha(photo, small, segmenter.info.input_size, as_bytes, refine=True)


def main() -> None:
    segmenter, samples = model_and_val_samples(__doc__)
    photo_scores = {cut: [] for cut in CUTS}
    crop_areas = {cut: [] for cut in CUTS}
    for sample in samples:
        photo = decode_image(sample.image.read_bytes(), MAX_EVAL_PIXELS)
        prob, truth = served_probability(segmenter, photo), load_truth(sample.mask)
        for cut in CUTS:
            scores = score_image((prob >= round(cut * 255)).astype(np.float32), truth)
            photo_scores[cut].append((scores["iou"], scores["boundary_f"]))
        crop = person_free_crop(sample)
        if crop is not None:
            crop_prob = served_probability(segmenter, crop)
            for cut in CUTS:
                crop_areas[cut].append(float((crop_prob >= round(cut * 255)).mean()))

    print(f"{'cut':>5} {'mean IoU':>9} {'boundary F':>11} {'false area':>11} {'false blobs':>12}")
    for cut in CUTS:
        scores, areas = np.array(photo_scores[cut]), np.array(crop_areas[cut])
        blobs = int((areas > FALSE_BLOB_SHARE).sum())
        iou, boundary = scores.mean(axis=0)
        print(f"{cut:>5} {iou:>9.4f} {boundary:>11.4f} {areas.mean():>10.2%} {blobs:>6} of {len(areas)}")


if __name__ == "__main__":
    main()
