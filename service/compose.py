"""Pure functions from (photo, probability map) to the pictures users download."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

SUBJECT_THRESHOLD = 0.5  # alpha above this counts as the subject for bounding boxes
# Soft alpha snaps the last 5% at each end of the probability to fully transparent / opaque: no faint haze
# over the background, no see-through skin. The stretch is symmetric, so 0.5 stays exactly 0.5.
SNAP = 0.05


def alpha_from_probability(prob: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Soft alpha (default) or a hard 0/255 alpha at `threshold`, as uint8."""
    if threshold is not None:
        return np.where(prob >= threshold, 255, 0).astype(np.uint8)
    stretched = (prob - SNAP) / (1.0 - 2 * SNAP)
    return np.round(np.clip(stretched, 0.0, 1.0) * 255).astype(np.uint8)


def mask_image(alpha: np.ndarray) -> Image.Image:
    return Image.fromarray(alpha)  # 8-bit single channel ("L")


def cutout(photo: Image.Image, alpha: np.ndarray) -> Image.Image:
    """RGBA: the photo with the background made transparent."""
    rgba = photo.convert("RGBA")
    rgba.putalpha(mask_image(alpha))
    return rgba


def parse_color(value: str) -> tuple[int, int, int, int]:
    """'#RRGGBB' or '#RRGGBBAA' -> RGBA tuple."""
    digits = value.lstrip("#")
    rgba = [int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)]
    return tuple(rgba + [255] * (4 - len(rgba)))  # type: ignore[return-value]


def on_color(photo: Image.Image, alpha: np.ndarray, color: tuple[int, int, int, int]) -> Image.Image:
    background = Image.new("RGBA", photo.size, color)
    return Image.alpha_composite(background, cutout(photo, alpha))


def on_image(photo: Image.Image, alpha: np.ndarray, background: Image.Image) -> Image.Image:
    """The subject over another picture, scaled and centre-cropped to cover the photo's size."""
    cover = ImageOps.fit(background.convert("RGBA"), photo.size, Image.LANCZOS)
    return Image.alpha_composite(cover, cutout(photo, alpha))


def subject_bbox(alpha: np.ndarray) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom), right/bottom exclusive, of the subject; None when there is none."""
    rows = np.flatnonzero((alpha >= SUBJECT_THRESHOLD * 255).any(axis=1))
    cols = np.flatnonzero((alpha >= SUBJECT_THRESHOLD * 255).any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def expand_box(box: tuple[int, int, int, int], margin: int, width: int, height: int) -> tuple[int, int, int, int]:
    left, top, right, bottom = box
    return max(0, left - margin), max(0, top - margin), min(width, right + margin), min(height, bottom + margin)
