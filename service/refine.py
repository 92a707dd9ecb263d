"""Edge-aware refinement of an upsampled probability map, guided by the full-resolution photo.

The model sees the photo at a few hundred pixels; the guided filter (He et al., 2010) lets the
bilinear-upsampled mask follow the photo's real edges (hair, fingers) at full resolution.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# Above this side length the filter runs on a downscaled copy: the model's output carries no finer detail
# anyway, and a full-size float pipeline on a 24-megapixel photo would cost gigabytes.
REFINE_MAX_SIDE = 2048


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, edges handled by shrinking the window (cumulative sums: O(pixels))."""
    h, w = x.shape[:2]

    def along(a: np.ndarray, axis: int, n: int) -> np.ndarray:
        c = np.cumsum(a, axis=axis)
        c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
        idx = np.arange(n)
        hi, lo = np.minimum(idx + radius + 1, n), np.maximum(idx - radius, 0)
        return np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)

    ones = np.ones((h, w), dtype=x.dtype)
    counts = along(along(ones, 0, h), 1, w)
    sums = along(along(x, 0, h), 1, w)
    return sums / (counts[..., None] if x.ndim == 3 else counts)


def guided_filter(guide_rgb: np.ndarray, prob: np.ndarray, radius: int, eps: float = 1e-3) -> np.ndarray:
    """Filter `prob` (HxW, 0..1) with a greyscale version of `guide_rgb` (HxWx3, 0..255) as guide."""
    guide = (guide_rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)) / 255.0
    p = prob.astype(np.float32)
    mean_i, mean_p = box_mean(guide, radius), box_mean(p, radius)
    cov_ip = box_mean(guide * p, radius) - mean_i * mean_p
    var_i = box_mean(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return np.clip(box_mean(a, radius) * guide + box_mean(b, radius), 0.0, 1.0)


def _resize(array: np.ndarray, width: int, height: int) -> np.ndarray:
    if array.ndim == 3:
        return np.asarray(Image.fromarray(array.astype(np.uint8)).resize((width, height), Image.BILINEAR))
    return np.asarray(Image.fromarray(array.astype(np.float32)).resize((width, height), Image.BILINEAR))


def refine_probability(photo_rgb: np.ndarray, prob: np.ndarray, model_size: int) -> np.ndarray:
    """Guided filter with a window matched to how much the model's output was upsampled."""
    height, width = prob.shape
    shrink = min(1.0, REFINE_MAX_SIDE / max(height, width))
    if shrink < 1.0:
        small_w, small_h = max(1, round(width * shrink)), max(1, round(height * shrink))
        refined = refine_probability(_resize(photo_rgb, small_w, small_h), _resize(prob, small_w, small_h), model_size)
        return np.clip(_resize(refined, width, height), 0.0, 1.0)
    radius = max(2, int(round(2 * max(height, width) / model_size)))
    return guided_filter(photo_rgb, prob, radius)
