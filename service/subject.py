"""Which person, and how sure: the main subject, a confidence score and "no person found".

All three look at the probability map on a small grid (at most GRID_SIDE per side): connected regions,
their size and place, and how decided the model was. They cost a few milliseconds whatever the photo.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from PIL import Image

from service.refine import box_mean

GRID_SIDE = 96
PERSON = 0.5
# Probabilities between these two are "undecided" for the confidence score.
UNSURE_LOW, UNSURE_HIGH = 0.2, 0.8
# No person found: the person area of the whole photo is below this share of its pixels. Chosen on the
# dev val split (models/README.md): no val photo's person is that small, most false blobs are.
MIN_PERSON_SHARE = 0.004
# A region within this share of the main person's height from it is a part of the main person cut off
# by something in front (a bag strap, an arm across the body), not another person.
PART_REACH = 0.12


@dataclass(frozen=True)
class Assessment:
    person_found: bool
    confidence: float  # 0..1: high when the mask is probably right


def _grid(prob: np.ndarray) -> np.ndarray:
    height, width = prob.shape
    shrink = min(1.0, GRID_SIDE / max(height, width))
    size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
    return np.asarray(Image.fromarray(prob.astype(np.float32)).resize(size, Image.BILINEAR))


def label_regions(binary: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected regions of a small boolean grid: labels 1..n (0 is background), and n."""
    labels = np.zeros(binary.shape, np.int32)
    height, width = binary.shape
    count = 0
    for start in zip(*np.nonzero(binary), strict=True):
        if labels[start]:
            continue
        count += 1
        labels[start] = count
        queue = deque([start])
        while queue:
            y, x = queue.popleft()
            for ny in (y - 1, y, y + 1):
                for nx in (x - 1, x, x + 1):
                    if 0 <= ny < height and 0 <= nx < width and binary[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = count
                        queue.append((ny, nx))
    return labels, count


def assess(prob: np.ndarray) -> Assessment:
    """Is there a person, and how likely is the mask right (from how decided the model was)."""
    grid = _grid(prob)
    person = grid >= PERSON
    share = float(person.mean())
    if share < MIN_PERSON_SHARE:
        # Sure of "nobody" when almost nothing leans towards person either.
        return Assessment(False, float(np.clip(1.0 - 4.0 * (grid > UNSURE_LOW).mean(), 0.0, 1.0)))
    unsure = (grid > UNSURE_LOW) & (grid < UNSURE_HIGH)
    unsure_share = float(unsure.sum()) / float(person.sum())
    return Assessment(True, float(np.clip(1.0 - unsure_share, 0.0, 1.0)))


def main_subject(prob: np.ndarray) -> np.ndarray:
    """Boolean map (the photo's size) of the regions that belong to the main person.

    The main person is the region with the most probability mass weighted by closeness to the photo's
    centre; other regions stay only if they come within PART_REACH of it.
    """
    grid = _grid(prob)
    labels, count = label_regions(grid >= PERSON)
    if count <= 1:
        return prob >= 0.0 if count == 1 else prob < 0.0
    height, width = grid.shape
    rows, cols = np.mgrid[0:height, 0:width]
    off_centre = np.hypot((rows + 0.5) / height - 0.5, (cols + 0.5) / width - 0.5) / np.hypot(0.5, 0.5)
    weighted = np.bincount(labels.ravel(), weights=(grid * (1.0 - 0.7 * off_centre)).ravel(), minlength=count + 1)
    weighted[0] = -1.0
    main = int(np.argmax(weighted))
    ys = np.nonzero(labels == main)[0]
    reach = max(1, round(PART_REACH * (ys.max() - ys.min() + 1)))
    near_main = box_mean((labels == main).astype(np.float32), reach) > 1e-6
    keep = np.zeros(count + 1, bool)
    keep[np.unique(labels[near_main])] = True
    keep[0] = False
    # Grow the kept regions a little so their soft edges at full resolution survive the cut.
    kept_grid = keep[labels].astype(np.float32)
    kept_grid = np.asarray(Image.fromarray(kept_grid).resize((prob.shape[1], prob.shape[0]), Image.BILINEAR))
    return kept_grid > 0.0
