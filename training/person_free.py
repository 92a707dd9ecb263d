"""Person-free squares of a photo: hard negatives for training and the "no person" evaluation.

Numpy only (evaluation must run without TensorFlow). A square is person-free when no person pixel lies
inside it or within `margin` pixels of it (a square neighbourhood: a little stricter than a distance).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

NO_BOX = (0.0, 0.0, 0.0, 0.0)  # "no person-free square", as tf.data carries None
FALSE_BLOB_SHARE = 0.005  # a person-free square "has a false blob" when more than this share of it is called person


def _summed_area(person: np.ndarray) -> np.ndarray:
    table = np.zeros((person.shape[0] + 1, person.shape[1] + 1), np.int64)
    table[1:, 1:] = person.astype(np.int64).cumsum(0).cumsum(1)
    return table


def _empty_windows(table: np.ndarray, side: int) -> np.ndarray:
    """Boolean map of top-left corners whose side x side window holds no person pixel."""
    return (table[side:, side:] - table[:-side, side:] - table[side:, :-side] + table[:-side, :-side]) == 0


def largest_person_free_square(person: np.ndarray, margin: int, min_side: int = 1) -> tuple[int, int, int] | None:
    """(top, left, side) of the largest square >= min_side px that keeps `margin` px from every person pixel.

    The photo's border needs no margin (nothing lies beyond it). Among the largest squares the one
    nearest the photo's centre is returned, so the choice is deterministic. None when none fits.
    """
    person = np.asarray(person, bool)
    height, width = person.shape
    padded = np.pad(person, margin)  # squares may touch the border; the pad holds no person
    table = _summed_area(padded)

    def fits(side: int) -> np.ndarray | None:
        window = side + 2 * margin
        if window > min(padded.shape):
            return None
        corners = _empty_windows(table, window)
        # A corner is valid only if the square itself (not its margin) lies inside the photo.
        corners = corners[: height - side + 1, : width - side + 1]
        return corners if corners.any() else None

    if fits(min_side) is None:
        return None
    low, high = min_side, min(height, width)
    while low < high:  # binary search: "a square of this side fits" is monotone in the side
        mid = (low + high + 1) // 2
        if fits(mid) is not None:
            low = mid
        else:
            high = mid - 1
    corners = fits(low)
    tops, lefts = np.nonzero(corners)
    centre_distance = (tops + low / 2 - height / 2) ** 2 + (lefts + low / 2 - width / 2) ** 2
    best = int(np.argmin(centre_distance))
    return int(tops[best]), int(lefts[best]), low


def normalized_box(square: tuple[int, int, int] | None, height: int, width: int) -> tuple[float, float, float, float]:
    """(top, left, bottom, right) in 0..1, or all zeros for "no square" (how tf.data carries None)."""
    if square is None:
        return NO_BOX
    top, left, side = square
    return (top / height, left / width, (top + side) / height, (left + side) / width)


# Training negatives are searched on masks shrunk to this side: fast, and the squares need no pixel precision.
_SEARCH_SIDE = 256


@cache
def unlabeled_people() -> frozenset[str]:
    """Stems of the training photos whose mask misses a person (training/unlabeled_people.txt)."""
    lines = Path(__file__).with_name("unlabeled_people.txt").read_text().splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def training_box(mask_path, margin_fraction: float = 0.03, min_side_fraction: float = 0.2) -> tuple[float, float, float, float]:
    """The largest person-free square of a training mask, as a normalized box (zeros: none fits, or the
    photo's mask is known to miss a person, so no square of it is surely person-free).

    Margin and minimum side are fractions of the mask's shorter side, so the choice does not depend on
    the photo's resolution.
    """
    from PIL import Image

    if Path(mask_path).stem in unlabeled_people():
        return NO_BOX

    with Image.open(mask_path) as mask:
        mask = mask.convert("L")
        mask.thumbnail((_SEARCH_SIDE, _SEARCH_SIDE), Image.Resampling.BOX)
        person = np.asarray(mask) > 0  # any trace of person after box averaging counts: conservative
    shorter = min(person.shape)
    square = largest_person_free_square(
        person, margin=max(2, round(margin_fraction * shorter)), min_side=max(8, round(min_side_fraction * shorter))
    )
    return normalized_box(square, *person.shape)


def training_boxes(mask_paths: list) -> list[tuple[float, float, float, float]]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(training_box, mask_paths))
