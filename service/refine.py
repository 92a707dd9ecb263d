"""From the model's small probability map to the full-resolution alpha, guided by the photo.

The model sees the photo at a few hundred pixels; the guided filter (He et al., 2010) lets the
upsampled mask follow the photo's real edges (hair, fingers) at full resolution. It runs as the "fast
guided filter" (He & Sun, 2015): the linear coefficients are fitted on a copy of at most
REFINE_WORK_SIDE pixels per side. Only the last step, alpha = shape(a . rgb + b) with a and b
bilinearly upsampled, runs at full resolution, in strips of STRIP_ROWS rows read from the photo and
written straight to uint8: no full-size copy of the photo, float or not, and none of the map is ever
made, so a 24 MP photo costs little more memory than its own pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

# The model's input size: its map carries no finer detail, and fitted there the filter's window spans the map's
# soft edge, which scores higher on dev val than a fit at 640 (models/README.md, "Colour guide").
REFINE_WORK_SIDE = 416
EPS = 1e-3
STRIP_ROWS = 256  # full-resolution rows done at a time (alpha, RGBA, edge colours)


def _window_sums(x: np.ndarray, axis: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums over a window of 2r+1 along one axis (cut at the edges), and each window's length.

    In-place slices of one cumulative sum: several times faster than fancy indexing on large arrays."""
    c = np.cumsum(np.moveaxis(x, axis, 0), axis=0)
    n = c.shape[0]
    r = min(radius, n - 1)
    sums = np.empty_like(c)
    sums[: n - r] = c[r:]  # window end: i + r, or the last row
    sums[n - r :] = c[n - 1]
    sums[r + 1 :] -= c[: n - r - 1]  # minus everything before the window start i - r
    idx = np.arange(n)
    lengths = np.minimum(idx + r, n - 1) - np.maximum(idx - r, 0) + 1
    return np.moveaxis(sums, 0, axis), lengths


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, edges handled by shrinking the window (cumulative sums: O(pixels))."""
    rows, row_counts = _window_sums(x, 0, radius)
    sums, col_counts = _window_sums(rows, 1, radius)
    counts = np.outer(row_counts, col_counts).astype(x.dtype)
    return sums / (counts[..., None] if x.ndim == 3 else counts)


def guided_coefficients(guide: np.ndarray, prob: np.ndarray, radius: int, eps: float = EPS) -> np.ndarray:
    """Per-pixel coefficients, box-averaged, such that the output is a . guide + b (He et al.'s colour guided
    filter): an H x W x 4 array, a for R, G, B then b (guide: H x W x 3, 0..1).

    A colour guide follows edges between colours of one brightness (a red coat on green grass) that a grey guide
    cannot see; on dev val it scores higher than the grey one (models/README.md, "Colour guide")."""
    height, width, _ = guide.shape
    red, green, blue = guide[..., 0], guide[..., 1], guide[..., 2]
    # One box mean over every product the filter needs: the guide, guide x prob, prob, the guide's 6 moments.
    moments = [red * red, red * green, red * blue, green * green, green * blue, blue * blue]
    stacked = np.concatenate([guide, guide * prob[..., None], prob[..., None], np.stack(moments, axis=-1)], axis=-1)
    means = box_mean(stacked, radius)
    mean_i, mean_ip, mean_p = means[..., 0:3], means[..., 3:6], means[..., 6]
    cov_ip = mean_ip - mean_i * mean_p[..., None]
    rr, rg, rb, gg, gb, bb = (means[..., 7 + k] for k in range(6))
    mr, mg, mb = mean_i[..., 0], mean_i[..., 1], mean_i[..., 2]
    rr, rg, rb = rr - mr * mr + eps, rg - mr * mg, rb - mr * mb
    gg, gb, bb = gg - mg * mg + eps, gb - mg * mb, bb - mb * mb + eps
    # The inverse of each pixel's symmetric 3 x 3 covariance by cofactors: far faster than a batched solve.
    inv_rr, inv_rg, inv_rb = gg * bb - gb * gb, gb * rb - rg * bb, rg * gb - gg * rb
    inv_gg, inv_gb, inv_bb = rr * bb - rb * rb, rg * rb - rr * gb, rr * gg - rg * rg
    det = rr * inv_rr + rg * inv_rg + rb * inv_rb
    c_r, c_g, c_b = cov_ip[..., 0], cov_ip[..., 1], cov_ip[..., 2]
    coefficients = np.empty((height, width, 4), np.float32)
    coefficients[..., 0] = (inv_rr * c_r + inv_rg * c_g + inv_rb * c_b) / det
    coefficients[..., 1] = (inv_rg * c_r + inv_gg * c_g + inv_gb * c_b) / det
    coefficients[..., 2] = (inv_rb * c_r + inv_gb * c_g + inv_bb * c_b) / det
    coefficients[..., 3] = mean_p - np.sum(coefficients[..., :3] * mean_i, axis=-1)
    return box_mean(coefficients, radius)


def guide_image(photo_rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> the guide the filter reads: float32 RGB, 0..1."""
    return photo_rgb.astype(np.float32) * np.float32(1 / 255)


def apply_coefficients(coefficients: np.ndarray, guide: np.ndarray) -> np.ndarray:
    return np.clip(np.einsum("hwc,hwc->hw", coefficients[..., :3], guide) + coefficients[..., 3], 0.0, 1.0)


def guided_filter(guide_rgb: np.ndarray, prob: np.ndarray, radius: int, eps: float = EPS) -> np.ndarray:
    """Filter `prob` (HxW, 0..1) with the photo `guide_rgb` (HxWx3, 0..255) as guide."""
    guide = guide_image(guide_rgb)
    return apply_coefficients(guided_coefficients(guide, prob.astype(np.float32), radius, eps), guide)


def resize_map(array: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(array.astype(np.float32)).resize((width, height), Image.BILINEAR))


def _source_positions(out_len: int, in_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear sampling with pixel centres aligned (as Pillow upsamples): two source indices and a weight."""
    src = (np.arange(out_len, dtype=np.float32) + 0.5) * (in_len / out_len) - 0.5
    low = np.clip(np.floor(src), 0, in_len - 1).astype(np.intp)
    high = np.minimum(low + 1, in_len - 1)
    return low, high, np.clip(src - low, 0.0, 1.0).astype(np.float32)


class Upsampler:
    """Bilinear upsampling of small maps to height x width, one strip of rows at a time."""

    def __init__(self, small_shape: tuple[int, int], height: int, width: int):
        self.rows = _source_positions(height, small_shape[0])
        self.cols = _source_positions(width, small_shape[1])

    def strip(self, small: np.ndarray, top: int, bottom: int) -> np.ndarray:
        low, high, weight = (part[top:bottom] for part in self.rows)
        # Trailing axes (channels) ride along.
        weight = weight.reshape((-1,) + (1,) * (small.ndim - 1))
        rows = small[low] * (1.0 - weight) + small[high] * weight
        left, right, col_weight = self.cols
        col_weight = col_weight.reshape((-1,) + (1,) * (small.ndim - 2))
        return rows[:, left] * (1.0 - col_weight) + rows[:, right] * col_weight


def _small(array: np.ndarray, width: int, height: int) -> np.ndarray:
    if array.shape[:2] == (height, width):
        return array.astype(np.float32)
    return resize_map(array, width, height)


def photo_rows(photo: Image.Image, top: int, bottom: int) -> np.ndarray:
    """Rows top..bottom of the photo as a uint8 array: a strip at a time, never the whole photo."""
    return np.asarray(photo.crop((0, top, photo.width, bottom)))


def full_resolution_alpha(
    photo: Image.Image, small_prob: np.ndarray, model_size: int, shape: Callable[[np.ndarray], np.ndarray], refine: bool
) -> np.ndarray:
    """uint8 alpha at the photo's size (an RGB image) from the model's map of the photo (any small size).

    refine: fit the guided filter's coefficients on a small copy and apply them at full resolution;
    otherwise plain bilinear upsampling. `shape` turns probabilities into alpha (uint8), strip by strip.
    """
    width, height = photo.size
    if refine:
        shrink = min(1.0, REFINE_WORK_SIDE / max(height, width))
        small_w, small_h = max(1, round(width * shrink)), max(1, round(height * shrink))
        small_photo = np.asarray(photo if shrink == 1.0 else photo.resize((small_w, small_h), Image.BILINEAR))
        radius = max(2, int(round(2 * max(small_h, small_w) / model_size)))
        coefficients = guided_coefficients(guide_image(small_photo), _small(small_prob, small_w, small_h), radius)
        upsampler = Upsampler(coefficients.shape[:2], height, width)

        def prob_rows(top: int, bottom: int) -> np.ndarray:
            return apply_coefficients(upsampler.strip(coefficients, top, bottom), guide_image(photo_rows(photo, top, bottom)))

    else:
        small = small_prob.astype(np.float32)
        upsampler = Upsampler(small.shape, height, width)

        def prob_rows(top: int, bottom: int) -> np.ndarray:
            return upsampler.strip(small, top, bottom)

    alpha = np.empty((height, width), np.uint8)
    for top in range(0, height, STRIP_ROWS):
        bottom = min(height, top + STRIP_ROWS)
        alpha[top:bottom] = shape(prob_rows(top, bottom))
    return alpha
