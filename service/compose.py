"""Pure functions from (foreground colour, alpha) to the pictures users download.

The foreground is the photo with its edge pixels' colours estimated (service.matte), or the photo itself.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

SUBJECT_THRESHOLD = 0.5  # alpha above this counts as the subject for bounding boxes


def mask_image(alpha: np.ndarray) -> Image.Image:
    return Image.fromarray(alpha)  # 8-bit single channel ("L")


def cutout(foreground: np.ndarray, alpha: np.ndarray) -> Image.Image:
    """RGBA: the person's colours with the background made transparent."""
    return Image.fromarray(np.dstack([foreground, alpha]), "RGBA")


def parse_color(value: str) -> tuple[int, int, int, int]:
    """'#RRGGBB' or '#RRGGBBAA' -> RGBA tuple."""
    digits = value.lstrip("#")
    rgba = [int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)]
    return tuple(rgba + [255] * (4 - len(rgba)))  # type: ignore[return-value]


def _size(alpha: np.ndarray) -> tuple[int, int]:
    return alpha.shape[1], alpha.shape[0]


def on_color(foreground: np.ndarray, alpha: np.ndarray, color: tuple[int, int, int, int]) -> Image.Image:
    background = Image.new("RGBA", _size(alpha), color)
    return Image.alpha_composite(background, cutout(foreground, alpha))


def on_image(foreground: np.ndarray, alpha: np.ndarray, background: Image.Image) -> Image.Image:
    """The subject over another picture, scaled and centre-cropped to cover the photo's size."""
    cover = ImageOps.fit(background.convert("RGBA"), _size(alpha), Image.LANCZOS)
    return Image.alpha_composite(cover, cutout(foreground, alpha))


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
