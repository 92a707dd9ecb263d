"""Person-class scores on thresholded masks, in numpy (evaluation needs no TensorFlow).

IoU counts the person class only (intersection over union of the predicted and true person pixels).
Pooled scores sum pixel counts over the whole split; the mean per-image IoU averages each image's IoU,
so small people weigh as much as large ones. An image with no person in truth and prediction scores 1.
"""

from __future__ import annotations

import numpy as np

THRESHOLD = 0.5


def confusion_counts(pred: np.ndarray, truth: np.ndarray, threshold: float = THRESHOLD) -> tuple[int, int, int]:
    """True positives, false positives, false negatives of the person class."""
    p, t = np.asarray(pred) >= threshold, np.asarray(truth) >= threshold
    return int(np.sum(p & t)), int(np.sum(p & ~t)), int(np.sum(~p & t))


def image_iou(pred: np.ndarray, truth: np.ndarray, threshold: float = THRESHOLD) -> float:
    tp, fp, fn = confusion_counts(pred, truth, threshold)
    return 1.0 if tp + fp + fn == 0 else tp / (tp + fp + fn)


def scores_from_counts(tp: float, fp: float, fn: float) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "pooled_iou": tp / (tp + fp + fn) if tp + fp + fn else 1.0,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }


def spearman(x, y) -> float:
    """Rank correlation (ties get their mean rank)."""

    def ranks(values):
        values = np.asarray(values, np.float64)
        order = np.argsort(values, kind="mergesort")
        ranked = np.empty(len(values))
        ranked[order] = np.arange(len(values))
        for value in np.unique(values):  # average the ranks of ties
            tied = values == value
            ranked[tied] = ranked[tied].mean()
        return ranked

    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / denominator) if denominator else 0.0
