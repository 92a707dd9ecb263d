"""From the refined probability to what the user sees: alpha shaping and foreground colour estimation.

Alpha shaping turns probability into opacity. A probability of 0.8 inside a dark sleeve is the model
being unsure, not the sleeve being 80% transparent, so the curve snaps both ends (solid interiors, no
haze over the background) and keeps a narrow soft band at the edge (no jaggies).

Foreground estimation gives every semi-transparent pixel the person's colour instead of the photo's:
the photo's edge pixel is person and old background mixed, and leaving it as it is shows the old
background as a glow or fringe on any new one. This is the blur-fusion estimator of Forte & Pitie 2021
("Approximate fast foreground colour estimation", ICIP) run coarse to fine on an image pyramid, as in
Germer et al. 2020's multi-level estimation:

    F = blur(F * a) / blur(a),  B = blur(B * (1 - a)) / blur(1 - a)   (alpha-weighted local means)
    r = I - a * F - (1 - a) * B                                         (what the compositing equation misses)
    F' = F + a * r,  B' = B + (1 - a) * r

Each level halves the photo (from FINE_SIDE down to a few pixels) and runs one small blur, starting
from the coarser level's colours: wide context at the cost of small blurs. The finest level works only
around the soft edge, and the last step runs at full resolution, only where alpha is strictly between
0 and 1 (elsewhere the colour is the photo's own). On a 12 px wide soft edge two passes of the paper's
blur fusion left ~8/255 of error; the pyramid stays under 4/255 (tests/test_matte.py).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from service.refine import STRIP_ROWS, box_mean

# Probabilities at or below ALPHA_LOW become transparent, at or above ALPHA_HIGH opaque, linear between.
# Chosen on dev val photos by the edge and natural-photo figures (README, "Edges"; models/README.md).
ALPHA_LOW = 0.3
ALPHA_HIGH = 0.7
FINE_SIDE = 384
COARSEST_SIDE = 8
RADIUS = 1  # pixels of each level: a 3x3 blur, wide context comes from the coarser levels
_TINY = 1e-5


def shape_alpha(prob: np.ndarray, low: float = ALPHA_LOW, high: float = ALPHA_HIGH) -> np.ndarray:
    """Probability (float, 0..1) -> alpha (uint8): clear below `low`, solid above `high`, linear between."""
    # Written around the centre so that the centre maps to exactly 127.5 -> 128: with the default
    # symmetric curve, alpha >= 128 is precisely probability >= 0.5.
    stretched = 0.5 + (prob - (low + high) / 2) * (1.0 / (high - low))
    return np.round(np.clip(stretched, 0.0, 1.0) * 255).astype(np.uint8)


def _residual_step(image, alpha, mean_fg, mean_bg):
    """Foreground and background moved so that they composite back to the photo."""
    a = alpha[..., None]
    residual = image - a * mean_fg - (1.0 - a) * mean_bg
    return np.clip(mean_fg + a * residual, 0.0, 1.0), np.clip(mean_bg + (1.0 - a) * residual, 0.0, 1.0)


def _sample_bilinear(grid: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Values of grid (h x w x c) at fractional (rows, cols): only the pixels asked for, no full upscale."""
    h, w = grid.shape[:2]
    r0 = np.clip(np.floor(rows).astype(np.int32), 0, h - 1)
    c0 = np.clip(np.floor(cols).astype(np.int32), 0, w - 1)
    r1, c1 = np.minimum(r0 + 1, h - 1), np.minimum(c0 + 1, w - 1)
    fr = np.clip(rows - r0, 0.0, 1.0)[:, None].astype(np.float32)
    fc = np.clip(cols - c0, 0.0, 1.0)[:, None].astype(np.float32)
    top = grid[r0, c0] * (1 - fc) + grid[r0, c1] * fc
    bottom = grid[r1, c0] * (1 - fc) + grid[r1, c1] * fc
    return top * (1 - fr) + bottom * fr


def _copy(image: Image.Image, side: int) -> np.ndarray:
    """A float 0..1 copy of at most `side` pixels per side (box-averaged)."""
    width, height = image.size
    shrink = min(1.0, side / max(height, width))
    size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
    return np.asarray(image if image.size == size else image.resize(size, Image.BOX), dtype=np.float32) / 255.0


def _half(image: np.ndarray) -> np.ndarray:
    """A 2x smaller copy (2x2 means; an odd last row or column is dropped)."""
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    cropped = image[:h, :w]
    return (cropped[0::2, 0::2] + cropped[1::2, 0::2] + cropped[0::2, 1::2] + cropped[1::2, 1::2]) * 0.25


def _doubled(field: np.ndarray, height: int, width: int) -> np.ndarray:
    """The next finer level's starting colours: each pixel repeated 2x2 (the level's blur smooths them)."""
    doubled = field.repeat(2, axis=0).repeat(2, axis=1)[:height, :width]
    pad = ((0, height - doubled.shape[0]), (0, width - doubled.shape[1]), (0, 0))
    return np.pad(doubled, pad, mode="edge") if any(p[1] for p in pad) else doubled


def _centres(height: int, width: int, field: np.ndarray, rows: np.ndarray, cols: np.ndarray):
    return (rows + 0.5) * (field.shape[0] / height) - 0.5, (cols + 0.5) * (field.shape[1] / width) - 0.5


def _blur_fusion(image, a, fg, bg):
    """One level's pass over the whole level."""
    blurred_alpha = box_mean(a, RADIUS)[..., None]
    mean_fg = box_mean(fg * a[..., None], RADIUS) / (blurred_alpha + _TINY)
    mean_bg = box_mean(bg * (1.0 - a[..., None]), RADIUS) / (1.0 - blurred_alpha + _TINY)
    return _residual_step(image, a, mean_fg, mean_bg)


def _blur_fusion_at(image, a, fg, bg, rows, cols):
    """The same pass at the given pixels only (the finest level: only around the soft edge)."""
    height, width = a.shape
    sums_fg, sums_bg = np.zeros((rows.size, 3), np.float32), np.zeros((rows.size, 3), np.float32)
    weights_fg, weights_bg = np.zeros(rows.size, np.float32), np.zeros(rows.size, np.float32)
    for dy in range(-RADIUS, RADIUS + 1):
        ys = np.clip(rows + dy, 0, height - 1)
        for dx in range(-RADIUS, RADIUS + 1):
            xs = np.clip(cols + dx, 0, width - 1)
            w = a[ys, xs]
            sums_fg += fg[ys, xs] * w[:, None]
            sums_bg += bg[ys, xs] * (1.0 - w)[:, None]
            weights_fg += w
            weights_bg += 1.0 - w
    mean_fg, mean_bg = sums_fg / (weights_fg[:, None] + _TINY), sums_bg / (weights_bg[:, None] + _TINY)
    return _residual_step(image[rows, cols], a[rows, cols], mean_fg, mean_bg)


def _pyramid_colours(image: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background fields of the finest level, estimated coarse to fine."""
    levels = [(image, a)]
    while max(levels[-1][1].shape) > COARSEST_SIDE and min(levels[-1][1].shape) >= 4:
        levels.append((_half(levels[-1][0]), _half(levels[-1][1])))
    fg = bg = levels[-1][0]
    for level_image, level_alpha in reversed(levels[1:]):
        height, width = level_alpha.shape
        if fg.shape[:2] != (height, width):
            fg, bg = _doubled(fg, height, width), _doubled(bg, height, width)
        fg, bg = _blur_fusion(level_image, level_alpha, fg, bg)
    # The finest level, only around the soft edge; everywhere else its colours are the photo's.
    soft = (a > 0) & (a < 1)
    rows, cols = np.nonzero(box_mean(soft.astype(np.float32), RADIUS + 1) > 1e-6)
    fine_fg, fine_bg = image.copy(), image.copy()
    if len(levels) > 1:
        coarse_rows, coarse_cols = np.minimum(rows // 2, fg.shape[0] - 1), np.minimum(cols // 2, fg.shape[1] - 1)
        fine_fg[rows, cols], fine_bg[rows, cols] = fg[coarse_rows, coarse_cols], bg[coarse_rows, coarse_cols]
    out_fg, out_bg = image.copy(), image.copy()
    out_fg[rows, cols], out_bg[rows, cols] = _blur_fusion_at(image, a, fine_fg, fine_bg, rows, cols)
    return out_fg, out_bg


class _ColourFields:
    """The foreground and background colour fields of a photo, fitted on its small copy, sampled at any pixel."""

    def __init__(self, photo: Image.Image, alpha: np.ndarray):
        self.alpha = alpha
        mean_fg, mean_bg = _pyramid_colours(_copy(photo, FINE_SIDE), _copy(Image.fromarray(alpha), FINE_SIDE))
        self.fields = np.concatenate([mean_fg, mean_bg], axis=2)  # sampled together: one set of positions

    def foreground(self, rows: np.ndarray, cols: np.ndarray, edge_rgb: np.ndarray) -> np.ndarray:
        """The person's colour (uint8, N x 3) at the given pixels, whose photo colours are edge_rgb."""
        sampled = _sample_bilinear(self.fields, *_centres(*self.alpha.shape, self.fields, rows, cols))
        edge_alpha = self.alpha[rows, cols].astype(np.float32) / 255.0
        edge_image = edge_rgb.astype(np.float32) / 255.0
        edge_fg, _ = _residual_step(edge_image, edge_alpha, sampled[:, :3], sampled[:, 3:])
        return np.round(edge_fg * 255.0).astype(np.uint8)


def _soft_pixels(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.nonzero((alpha > 0) & (alpha < 255))


def decontaminate(rgba: np.ndarray, photo: Image.Image) -> None:
    """In place: the colour of every pixel of `rgba` with 0 < alpha < 255 becomes the person's own colour.

    `rgba` holds the photo's colours and the alpha; `photo` is the same photo (its small copy comes from it).
    The soft pixels are done a strip of rows at a time, so that a large photo's wide soft band never needs
    full-size temporaries.
    """
    alpha = rgba[..., 3]
    fields = None
    for top in range(0, alpha.shape[0], STRIP_ROWS):
        strip = rgba[top : top + STRIP_ROWS]
        rows, cols = _soft_pixels(strip[..., 3])
        if rows.size:
            if fields is None:  # fitted once, and only when there is a soft edge
                fields = _ColourFields(photo, alpha)
            strip[rows, cols, :3] = fields.foreground(rows + top, cols, strip[rows, cols, :3])


def estimate_foreground(photo_rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The person's own colour (uint8 RGB) wherever 0 < alpha < 255; the photo's colour everywhere else."""
    rows, cols = _soft_pixels(alpha)
    if not rows.size:
        return photo_rgb
    result = photo_rgb.copy()
    result[rows, cols] = _ColourFields(Image.fromarray(photo_rgb), alpha).foreground(rows, cols, photo_rgb[rows, cols])
    return result
