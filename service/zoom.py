"""A second look at small subjects: when the people fill little of the photo, run the model again on
their box, so it sees them at its full input size instead of a few dozen pixels.

The merged map has the photo's aspect and enough pixels that the box gets the model's resolution;
outside the box it is the first pass's map upsampled.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from service.refine import resize_map
from service.segmenter import Segmenter
from service.subject import PERSON

# Zoom when the subject's box covers less than this share of the photo.
ZOOM_BELOW_SHARE = 0.15
# Context kept around the box on each side, as a share of the box's size (and at least this share of the photo).
MARGIN = 0.3
MIN_MARGIN = 0.05
MAX_MERGED_SIDE = 2048


def subject_box(small: np.ndarray) -> tuple[float, float, float, float] | None:
    """(top, left, bottom, right) of the person pixels, as fractions of the map; None when there are none."""
    rows, cols = np.flatnonzero((small >= PERSON).any(axis=1)), np.flatnonzero((small >= PERSON).any(axis=0))
    if rows.size == 0:
        return None
    height, width = small.shape
    return rows[0] / height, cols[0] / width, (rows[-1] + 1) / height, (cols[-1] + 1) / width


def zoom_box(box: tuple[float, float, float, float]) -> tuple[float, float, float, float] | None:
    """The box grown by its margin to the photo's own aspect ratio (the model saw whole photos stretched
    to its square, never other shapes), shifted inside the photo; None when the subject is big enough."""
    top, left, bottom, right = box
    if (bottom - top) * (right - left) >= ZOOM_BELOW_SHARE:
        return None
    # In fractions of the photo, the same aspect as the photo means the same fraction both ways.
    side = min(1.0, max(bottom - top, right - left) * (1 + 2 * MARGIN) + 2 * MIN_MARGIN)
    centre_y, centre_x = (top + bottom) / 2, (left + right) / 2
    top, left = min(max(0.0, centre_y - side / 2), 1.0 - side), min(max(0.0, centre_x - side / 2), 1.0 - side)
    return top, left, top + side, left + side


def zoomed_map(segmenter: Segmenter, photo: Image.Image, small: np.ndarray) -> np.ndarray:
    """The first pass's map, with the subject's box replaced by a second pass on it (when it is small)."""
    box = subject_box(small)
    region = zoom_box(box) if box else None
    if region is None:
        return small
    top, left, bottom, right = region
    pixels = (round(left * photo.width), round(top * photo.height), round(right * photo.width), round(bottom * photo.height))
    if pixels[2] - pixels[0] < 8 or pixels[3] - pixels[1] < 8:
        return small
    second = segmenter.predict_small(photo.crop(pixels))
    # Enough resolution for the box to keep the second pass's detail, in the photo's aspect.
    size = segmenter.info.input_size
    scale = min(size / max(bottom - top, right - left) / max(photo.width, photo.height), 1.0)
    width = max(1, min(MAX_MERGED_SIDE, round(photo.width * scale)))
    height = max(1, min(MAX_MERGED_SIDE, round(photo.height * scale)))
    merged = resize_map(small, width, height).copy()
    y0, x0, y1, x1 = round(top * height), round(left * width), round(bottom * height), round(right * width)
    if y1 > y0 and x1 > x0:
        merged[y0:y1, x0:x1] = resize_map(second, x1 - x0, y1 - y0)
    return merged
