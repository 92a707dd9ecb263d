"""Find and validate image/mask pairs before any tf.data code touches them.

Two layouts are accepted:
- Kaggle "Person Segmentation": images/<stem>.jpg, masks/<stem>.png, segmentation/{train,val}.txt
- a plain images/ + masks/ folder pair, split deterministically with ``val_fraction``.

A broken dataset fails here with one readable error instead of a traceback deep inside tf.data.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MAX_NAMED_OFFENDERS = 5


class DatasetError(ValueError):
    """The dataset cannot be trained on; the message names the offenders."""


@dataclass(frozen=True)
class Sample:
    image: Path
    mask: Path

    @property
    def stem(self) -> str:
        return self.image.stem


@dataclass(frozen=True)
class Splits:
    train: list[Sample]
    val: list[Sample]


def _index_by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def _read_split_file(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _check_pair(sample: Sample) -> str | None:
    """Return a problem description, or None when the pair is usable."""
    if not sample.image.is_file():
        return f"{sample.stem}: image missing"
    if not sample.mask.is_file():
        return f"{sample.stem}: mask missing ({sample.mask.name})"
    try:
        with Image.open(sample.image) as image, Image.open(sample.mask) as mask:
            image_size, mask_size = image.size, mask.size
            image.verify()  # header + structure check without a full decode
    except Exception as exc:  # PIL raises many types for unreadable files
        return f"{sample.stem}: unreadable ({type(exc).__name__}: {exc})"
    if image_size != mask_size:
        return f"{sample.stem}: image is {image_size[0]}x{image_size[1]}, mask is {mask_size[0]}x{mask_size[1]}"
    return None


def validate(samples: list[Sample], split: str, skip_bad: bool = False) -> list[Sample]:
    """Check every pair; raise one DatasetError naming the first offenders, or drop them with skip_bad."""
    if not samples:
        raise DatasetError(f"split '{split}' is empty")
    with ThreadPoolExecutor(max_workers=8) as pool:
        problems = list(pool.map(_check_pair, samples))
    bad = [p for p in problems if p]
    if bad and not skip_bad:
        shown = "\n  ".join(bad[:MAX_NAMED_OFFENDERS])
        raise DatasetError(
            f"{len(bad)} of {len(samples)} samples in split '{split}' are unusable "
            f"(rerun with --skip-bad to drop them):\n  {shown}"
        )
    good = [s for s, p in zip(samples, problems, strict=True) if p is None]
    if not good:
        raise DatasetError(f"split '{split}' has no usable samples")
    if bad:
        print(f"[dataset] skipped {len(bad)} bad samples in split '{split}'")
    return good


def discover(root: str | Path, val_fraction: float = 0.1, seed: int = 0) -> Splits:
    """Pair images with masks in either supported layout (no validation yet)."""
    root = Path(root)
    images_dir, masks_dir = root / "images", root / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise DatasetError(f"{root} needs an images/ and a masks/ folder")
    images, masks = _index_by_stem(images_dir), _index_by_stem(masks_dir)

    def sample(stem: str) -> Sample:
        return Sample(images.get(stem, images_dir / f"{stem}.jpg"), masks.get(stem, masks_dir / f"{stem}.png"))

    split_dir = root / "segmentation"
    if (split_dir / "train.txt").is_file() and (split_dir / "val.txt").is_file():
        return Splits(
            train=[sample(s) for s in _read_split_file(split_dir / "train.txt")],
            val=[sample(s) for s in _read_split_file(split_dir / "val.txt")],
        )

    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"--val-fraction must be between 0 and 1, got {val_fraction}")
    stems = sorted(images)
    random.Random(seed).shuffle(stems)  # deterministic for a given seed
    n_val = max(1, round(len(stems) * val_fraction)) if stems else 0
    return Splits(train=[sample(s) for s in stems[n_val:]], val=[sample(s) for s in stems[:n_val]])


def load_splits(root: str | Path, val_fraction: float = 0.1, seed: int = 0, skip_bad: bool = False) -> Splits:
    splits = discover(root, val_fraction, seed)
    return Splits(
        train=validate(splits.train, "train", skip_bad),
        val=validate(splits.val, "val", skip_bad),
    )
