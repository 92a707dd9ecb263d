"""Hard photos: the training photos a model still gets wrong, for `fit` to see more often.

The per-image mean IoU the card reports is held down by a few photos (a silhouette against the sun, a
paraglider under its canopy, people small at the edge), and an epoch shows each such photo once among
thousands. `mine` runs a model (an exported ONNX file) on every training photo and records its IoU with the
photo's mask at the model's resolution; `fit --hard-photos FILE --hard-photo-fraction F` then draws F of
its crops from the photos below HARD_PHOTO_IOU, augmented as usual.

Numpy, Pillow and onnxruntime only: mining runs without TensorFlow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from training import dataset
from training.evaluate import load_truth
from training.scores import image_iou

HARD_PHOTO_IOU = 0.8  # a photo scored below this is "hard"; models/README.md (stage 21) says how many that made


def truth_at(mask_path: Path, width: int, height: int) -> np.ndarray:
    """The evaluation's reading of a mask (0..1), area-averaged to width x height."""
    from PIL import Image

    return np.asarray(Image.fromarray(load_truth(mask_path)).resize((width, height), Image.Resampling.BOX), np.float32)


def mine(segmenter, samples: Iterable[dataset.Sample], progress: bool = True) -> list[dict]:
    """One record per sample: the model's IoU on the whole photo."""
    from PIL import Image
    from tqdm import tqdm

    records = []
    for sample in tqdm(list(samples), desc="mine", unit="img", disable=not progress):
        with Image.open(sample.image) as photo:
            probability = segmenter.predict_small(photo.convert("RGB"))
        truth = truth_at(sample.mask, probability.shape[1], probability.shape[0])
        records.append({"stem": sample.stem, "iou": image_iou(probability, truth)})
    return records


def write(records: list[dict], model: str | Path, out: str | Path) -> dict:
    ious = np.array([r["iou"] for r in records])
    summary = {
        "model": str(model),
        "photos": len(records),
        "hard": int((ious < HARD_PHOTO_IOU).sum()),
        "hard_photo_iou": HARD_PHOTO_IOU,
        "mean_iou": float(ious.mean()) if len(ious) else None,
    }
    Path(out).write_text(json.dumps({**summary, "records": records}, indent=1))
    return summary


def hard_photos(path: str | Path, samples: list[dataset.Sample]) -> list[dataset.Sample]:
    """The samples whose mined IoU is below HARD_PHOTO_IOU, in the order of `samples`."""
    hard = {r["stem"] for r in json.loads(Path(path).read_text())["records"] if r["iou"] < HARD_PHOTO_IOU}
    chosen = [s for s in samples if s.stem in hard]
    if not chosen:
        raise dataset.DatasetError(f"{path}: no hard photo among these training photos (mined on another dataset?)")
    return chosen
