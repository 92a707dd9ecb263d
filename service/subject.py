"""Which person, and how sure: the people (stray blobs dropped), the main subject, a confidence score and
"no person found".

All four look at the probability map on a small grid (at most GRID_SIDE per side): connected regions,
their size and place, and how decided the model was. They cost a few milliseconds whatever the photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from service.refine import box_mean

GRID_SIDE = 96
PERSON = 0.5
# Cells below this probability are plain background and say nothing about how sure the mask is.
CONSIDERED = 0.1
# No person found: the person area of the whole photo is below this share of its pixels: a speck, not
# a person. Kept low so that distant people are not dropped (the smallest dev val person covers 0.13% of
# its photo); specks between this and a few tenths of a percent are too small to be seen as false blobs
# (python -m scripts.no_person_threshold, models/README.md).
MIN_PERSON_SHARE = 0.0005
# A region within this share of the main person's height from it, and mostly within the main person's
# columns, is a part of the main person cut off by something in front (a bag strap, an arm across the
# body); a region beside the main person is another person.
PART_REACH = 0.12
# A region under STRAY_SHARE of the largest region's area, on which the model is also unsure (mean probability
# under STRAY_CONFIDENCE), is a stray blob (a bag, a balloon, a lamp) rather than a person. Dropping them pays on dev
# val for every model measured; the confidence clause keeps most of the small people the model is sure of, which
# size alone drops (python -m scripts.stray_share, models/README.md "Stray blobs").
STRAY_SHARE = 0.3
STRAY_CONFIDENCE = 0.8


@dataclass(frozen=True)
class Assessment:
    person_found: bool
    confidence: float  # 0..1: high when the mask is probably right


def coarse_grid(prob: np.ndarray) -> np.ndarray:
    height, width = prob.shape
    shrink = min(1.0, GRID_SIDE / max(height, width))
    size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
    return np.asarray(Image.fromarray(prob.astype(np.float32)).resize(size, Image.BILINEAR))


def label_regions(binary: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected regions of a small boolean grid: labels 1..n (0 is background) in the raster order of each
    region's first cell, and n.

    Every cell takes the smallest cell index in its 3 x 3 neighbourhood, then jumps to what that cell points at,
    until nothing changes: each region ends at its first cell's index. Whole-array steps instead of a queue of
    cells, because it runs on every request (stray blobs): a few dozen numpy calls instead of a Python step per cell.
    """
    height, width = binary.shape
    background = height * width
    pointers = np.where(binary, np.arange(background).reshape(height, width), background)
    while True:
        padded = np.pad(pointers, 1, constant_values=background)
        smallest = pointers.copy()
        for dy in range(3):
            for dx in range(3):
                np.minimum(smallest, padded[dy : dy + height, dx : dx + width], out=smallest)
        smallest = np.where(binary, smallest, background)
        flat = np.append(smallest.ravel(), background)
        jumped = flat[flat[flat[:-1]]].reshape(height, width)
        if np.array_equal(jumped, pointers):
            break
        pointers = jumped
    roots, labels = np.unique(pointers, return_inverse=True)
    labels = labels.reshape(height, width).astype(np.int32) + 1
    count = len(roots) - int(roots[-1] == background) if roots.size else 0
    labels[~binary] = 0
    return labels, count


def assess(prob: np.ndarray) -> Assessment:
    """Is there a person, and how likely is the mask right.

    Confidence is how decided the model was where it saw anything at all: the mean of |2p - 1| over the
    cells with p > CONSIDERED (1: every such cell is 0 or 1; 0: all at a coin flip). How well it ranks
    photos by their IoU on dev val is in models/README.md.
    """
    grid = coarse_grid(prob)
    considered = grid[grid > CONSIDERED]
    confidence = float(np.abs(2.0 * considered - 1.0).mean()) if considered.size else 1.0
    person_found = float((grid >= PERSON).mean()) >= MIN_PERSON_SHARE
    return Assessment(person_found, confidence)


def _on_photo_grid(grid_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A boolean grid map -> a boolean map of `shape`, grown by about a grid cell so that the soft edges of
    what it marks at full resolution survive the cut."""
    upsampled = Image.fromarray(grid_map.astype(np.float32)).resize((shape[1], shape[0]), Image.BILINEAR)
    return np.asarray(upsampled) > 0.0


def without_strays(prob: np.ndarray, share: float = STRAY_SHARE, confidence: float = STRAY_CONFIDENCE) -> np.ndarray:
    """Boolean map (the size of `prob`): False on the stray blobs, regions under `share` of the largest
    region's area with a mean probability under `confidence`; True elsewhere, so a photo with one region, or
    none, keeps every pixel."""
    grid = coarse_grid(prob)
    labels, count = label_regions(grid >= PERSON)
    if count <= 1:
        return np.ones(prob.shape, bool)
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    areas[0] = 0
    sureness = np.bincount(labels.ravel(), weights=grid.ravel(), minlength=count + 1) / np.maximum(areas, 1)
    kept = (areas >= share * areas.max()) | (sureness >= confidence)
    stray = ~kept
    kept[0] = stray[0] = False
    return ~_on_photo_grid(stray[labels], prob.shape) | _on_photo_grid(kept[labels], prob.shape)


def main_subject(prob: np.ndarray) -> np.ndarray:
    """Boolean map (the size of `prob`) of the regions that belong to the main person.

    The main person is the region with the most probability mass weighted by closeness to the photo's
    centre; other regions stay only if they come within PART_REACH of it and lie mostly within its columns.
    """
    grid = coarse_grid(prob)
    labels, count = label_regions(grid >= PERSON)
    if count <= 1:
        return prob >= 0.0 if count == 1 else prob < 0.0
    height, width = grid.shape
    rows, cols = np.mgrid[0:height, 0:width]
    off_centre = np.hypot((rows + 0.5) / height - 0.5, (cols + 0.5) / width - 0.5) / np.hypot(0.5, 0.5)
    weighted = np.bincount(labels.ravel(), weights=(grid * (1.0 - 0.7 * off_centre)).ravel(), minlength=count + 1)
    weighted[0] = -1.0
    main = int(np.argmax(weighted))
    ys, xs = np.nonzero(labels == main)
    reach = max(1, round(PART_REACH * (ys.max() - ys.min() + 1)))
    near_main = box_mean((labels == main).astype(np.float32), reach) > 1e-6
    below_or_above = (cols >= xs.min() - reach) & (cols <= xs.max() + reach)
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    in_columns = np.bincount(labels.ravel(), weights=below_or_above.ravel().astype(np.float64), minlength=count + 1)
    keep = np.zeros(count + 1, bool)
    keep[np.unique(labels[near_main])] = True
    keep &= in_columns >= 0.5 * areas
    keep[0], keep[main] = False, True
    return _on_photo_grid(keep[labels], prob.shape)
