"""Person-class metrics on thresholded masks, Keras streaming versions (numpy reference: training.scores).

IoU counts the person class only (intersection over union of the predicted and true person pixels).
Pooled metrics sum pixel counts over the whole split; the mean per-image IoU averages each image's IoU,
so small people weigh as much as large ones. An image with no person in truth and prediction scores 1.
"""

from __future__ import annotations

import keras
from keras import ops

from training.scores import THRESHOLD


# ---- Keras streaming metrics -----------------------------------------------------------------------
class _PooledCounts(keras.metrics.Metric):
    """Accumulates thresholded TP/FP/FN over batches; subclasses say which score to report."""

    score = "pooled_iou"

    def __init__(self, name=None, threshold=THRESHOLD, **kwargs):
        super().__init__(name=name or self.score, **kwargs)
        self.threshold = threshold
        self.tp = self.add_variable(shape=(), initializer="zeros", name="tp", dtype="float64")
        self.fp = self.add_variable(shape=(), initializer="zeros", name="fp", dtype="float64")
        self.fn = self.add_variable(shape=(), initializer="zeros", name="fn", dtype="float64")

    def update_state(self, y_true, y_pred, sample_weight=None):
        p = ops.cast(ops.cast(y_pred, "float32") >= self.threshold, "float64")
        t = ops.cast(ops.cast(y_true, "float32") >= self.threshold, "float64")
        self.tp.assign_add(ops.sum(p * t))
        self.fp.assign_add(ops.sum(p * (1 - t)))
        self.fn.assign_add(ops.sum((1 - p) * t))

    def result(self):
        tp, fp, fn = self.tp, self.fp, self.fn
        precision = ops.divide_no_nan(tp, tp + fp)
        recall = ops.divide_no_nan(tp, tp + fn)
        return {
            "pooled_iou": ops.where(tp + fp + fn > 0, ops.divide_no_nan(tp, tp + fp + fn), 1.0),
            "precision": precision,
            "recall": recall,
            "f1": ops.divide_no_nan(2 * precision * recall, precision + recall),
        }[self.score]

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class PooledIoU(_PooledCounts):
    score = "pooled_iou"


class Precision(_PooledCounts):
    score = "precision"


class Recall(_PooledCounts):
    score = "recall"


class F1(_PooledCounts):
    score = "f1"


class MeanImageIoU(keras.metrics.Metric):
    """Mean over images of each image's person IoU (the number the product is judged on)."""

    def __init__(self, name="iou", threshold=THRESHOLD, **kwargs):
        super().__init__(name=name, **kwargs)
        self.threshold = threshold
        self.total = self.add_variable(shape=(), initializer="zeros", name="total", dtype="float64")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count", dtype="float64")

    def update_state(self, y_true, y_pred, sample_weight=None):
        p = ops.cast(ops.cast(y_pred, "float32") >= self.threshold, "float64")
        t = ops.cast(ops.cast(y_true, "float32") >= self.threshold, "float64")
        axes = list(range(1, len(p.shape)))
        intersection = ops.sum(p * t, axis=axes)
        union = ops.sum(ops.maximum(p, t), axis=axes)
        ious = ops.where(union > 0, ops.divide_no_nan(intersection, union), 1.0)
        self.total.assign_add(ops.sum(ious))
        self.count.assign_add(ops.cast(ops.shape(ious)[0], "float64"))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


def all_metrics() -> list[keras.metrics.Metric]:
    return [MeanImageIoU(), PooledIoU(), Precision(), Recall(), F1()]


# ---- losses ----------------------------------------------------------------------------------------
def dice_loss(y_true, y_pred, smooth=1.0):
    y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
    axes = list(range(1, len(y_pred.shape)))
    overlap = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return 1.0 - (2.0 * overlap + smooth) / (total + smooth)


def bce_dice_loss(y_true, y_pred):
    bce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred), axis=(1, 2))
    return bce + dice_loss(y_true, y_pred)


LOSSES = {"bce": "binary_crossentropy", "bce_dice": bce_dice_loss}
