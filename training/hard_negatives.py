"""Hard negatives: the person-free squares of training photos where a model still finds a person.

Random person-free crops (`--negative-fraction`) are mostly sky, walls and floor, which the model already
leaves out; what it gets wrong is the rare square with a balloon, a bag or a teddy bear in it. `mine`
runs a model (an exported ONNX file) on every training photo's largest person-free square, the same
square `--negative-fraction` draws from, and records how much of it the model calls person; `fit
--hard-negatives FILE --hard-negative-fraction F` then draws F of its crops from the squares above
FALSE_BLOB_SHARE, so those are seen many times per epoch instead of once in ten epochs.

Numpy, Pillow and onnxruntime only: mining runs without TensorFlow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from training import dataset

# A square is hard when the "no person" report (training.evaluate) would count a blob in it.
from training.person_free import FALSE_BLOB_SHARE, training_box, unlabeled_people

PERSON_PROBABILITY = 0.5


def box_pixels(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """A normalized (top, left, bottom, right) box as a PIL crop box (left, upper, right, lower)."""
    top, left, bottom, right = box
    return round(left * width), round(top * height), round(right * width), round(bottom * height)


def mine(segmenter, samples: Iterable[dataset.Sample], progress: bool = True) -> list[dict]:
    """One record per sample that has a person-free square: its box and the share the model calls person."""
    from PIL import Image
    from tqdm import tqdm

    records = []
    for sample in tqdm(list(samples), desc="mine", unit="img", disable=not progress):
        box = training_box(sample.mask)
        if box[2] <= box[0]:
            continue
        with Image.open(sample.image) as photo:
            square = photo.convert("RGB").crop(box_pixels(box, *photo.size))
        probability = segmenter.predict_small(square)
        records.append({"stem": sample.stem, "box": list(box), "false_area": float((probability >= PERSON_PROBABILITY).mean())})
    return records


def write(records: list[dict], model: str | Path, out: str | Path) -> dict:
    hard = [r for r in records if r["false_area"] > FALSE_BLOB_SHARE]
    summary = {"model": str(model), "squares": len(records), "hard": len(hard), "false_blob_share": FALSE_BLOB_SHARE}
    Path(out).write_text(json.dumps({**summary, "records": records}, indent=1))
    return summary


def hard_squares(path: str | Path, samples: list[dataset.Sample]) -> tuple[list[dataset.Sample], list[tuple]]:
    """The samples whose mined square is hard, and those squares, in the order of `samples`."""
    records = json.loads(Path(path).read_text())["records"]
    # files mined before a photo was listed as missing a person may still hold its square
    by_stem = {r["stem"]: r for r in records if r["false_area"] > FALSE_BLOB_SHARE and r["stem"] not in unlabeled_people()}
    chosen = [s for s in samples if s.stem in by_stem]
    if not chosen:
        raise dataset.DatasetError(f"{path}: no hard person-free square among these training photos (mined on another dataset?)")
    return chosen, [tuple(by_stem[s.stem]["box"]) for s in chosen]
