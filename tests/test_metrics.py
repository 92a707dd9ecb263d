"""The Keras streaming metrics agree with a plain numpy reference to 1e-6."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="the [train] extra is not installed")
from training import metrics  # noqa: E402
from training import scores as numpy_scores  # noqa: E402
from training.config import LOSS_NAMES


def numpy_reference(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    p, t = pred >= 0.5, truth >= 0.5
    tp, fp, fn = (p & t).sum(), (p & ~t).sum(), (~p & t).sum()
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    per_image = []
    for pi, ti in zip(p, t, strict=True):
        union = (pi | ti).sum()
        per_image.append(1.0 if union == 0 else (pi & ti).sum() / union)
    return {
        "iou": np.mean(per_image),
        "pooled_iou": tp / (tp + fp + fn),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall),
    }


def test_streaming_metrics_match_numpy_over_batches():
    rng = np.random.default_rng(0)
    truth = (rng.random((6, 16, 16, 1)) < 0.4).astype(np.float32)
    pred = np.clip(truth * 0.7 + rng.random(truth.shape) * 0.5, 0, 1).astype(np.float32)
    truth[5] = 0  # an image without a person
    pred[5] = 0.1  # ...and correctly predicted empty: IoU 1
    expected = numpy_reference(pred, truth)
    for metric in metrics.all_metrics():
        for start in (0, 2, 4):  # three batches, accumulated
            metric.update_state(truth[start : start + 2], pred[start : start + 2])
        assert float(metric.result()) == pytest.approx(expected[metric.name], abs=1e-6), metric.name


def test_numpy_helpers():
    truth = np.zeros((4, 4))
    truth[:2] = 1
    pred = np.zeros((4, 4))
    pred[1:3] = 1
    assert numpy_scores.confusion_counts(pred, truth) == (4, 4, 4)
    assert numpy_scores.image_iou(pred, truth) == pytest.approx(1 / 3)
    assert numpy_scores.image_iou(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    scores = numpy_scores.scores_from_counts(4, 4, 4)
    assert scores == {"pooled_iou": pytest.approx(1 / 3), "precision": 0.5, "recall": 0.5, "f1": 0.5}


def test_bce_dice_is_zero_for_perfect_and_large_for_inverted():
    truth = np.zeros((2, 8, 8, 1), np.float32)
    truth[:, 2:6, 2:6] = 1
    perfect = np.clip(truth, 1e-7, 1 - 1e-7)
    assert float(np.mean(metrics.bce_dice_loss(truth, perfect))) < 0.01
    assert float(np.mean(metrics.bce_dice_loss(truth, 1 - perfect))) > 5


def test_lovasz_equals_one_minus_iou_on_hard_masks_and_orders_soft_ones():
    # On 0/1 predictions the Lovász extension is the Jaccard loss itself: 1 - per-image IoU.
    rng = np.random.default_rng(0)
    truth = (rng.random((3, 16, 16, 1)) < 0.4).astype(np.float32)
    truth[2] = 0  # an empty mask: the loss is the largest false-person probability
    guess = (rng.random((3, 16, 16, 1)) < 0.4).astype(np.float32)
    expected = [1 - numpy_scores.image_iou(guess[i, ..., 0], truth[i, ..., 0]) for i in range(3)]
    assert np.asarray(metrics.lovasz_loss(truth, guess)) == pytest.approx(expected, abs=1e-6)
    assert float(metrics.lovasz_loss(truth[2:], 0.3 * guess[2:])[0]) == pytest.approx(0.3, abs=1e-6)
    # Soft predictions: nearer the truth costs less, and bce_lovasz adds the cross-entropy.
    near, far = 0.8 * truth + 0.1, 0.5 * truth + 0.25
    assert np.all(np.asarray(metrics.lovasz_loss(truth[:2], near[:2])) < np.asarray(metrics.lovasz_loss(truth[:2], far[:2])))
    assert np.all(np.asarray(metrics.bce_lovasz_loss(truth, near)) > np.asarray(metrics.lovasz_loss(truth, near)))


def test_every_loss_the_command_line_offers_exists():
    assert set(metrics.LOSSES) == set(LOSS_NAMES)


def test_spearman_is_one_for_the_same_order_and_handles_ties():
    assert numpy_scores.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert numpy_scores.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert numpy_scores.spearman([1, 1, 2, 3], [5, 6, 7, 8]) == pytest.approx(0.9486833, abs=1e-6)  # scipy's value
