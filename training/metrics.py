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


def lovasz_loss(y_true, y_pred):
    """Lovász extension of each image's Jaccard loss (Berman et al. 2018, binary "Lovász-softmax" form).

    Dice is a smooth stand-in for IoU; this is the tight convex surrogate of the per-image IoU that the
    evaluation reports, so fine-tuning with it spends the gradient on the pixels that cost IoU. The pixels are
    ranked by error |truth - p|; each error is weighted by how much the IoU drops when that pixel goes wrong
    next. On an empty mask it reduces to the largest false-person probability.
    """
    y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
    truth = ops.reshape(y_true, (ops.shape(y_true)[0], -1))
    errors = ops.abs(truth - ops.reshape(y_pred, ops.shape(truth)))
    sorted_errors, order = ops.top_k(errors, k=ops.shape(errors)[1], sorted=True)
    sorted_truth = ops.take_along_axis(truth, order, axis=1)
    person = ops.sum(sorted_truth, axis=1, keepdims=True)
    intersection = person - ops.cumsum(sorted_truth, axis=1)
    union = person + ops.cumsum(1.0 - sorted_truth, axis=1)
    jaccard = 1.0 - intersection / union
    weights = ops.concatenate([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], axis=1)
    return ops.sum(sorted_errors * ops.stop_gradient(weights), axis=1)


def bce_lovasz_loss(y_true, y_pred):
    bce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred), axis=(1, 2))
    return bce + lovasz_loss(y_true, y_pred)


LOSSES = {"bce": "binary_crossentropy", "bce_dice": bce_dice_loss, "bce_lovasz": bce_lovasz_loss}
