"""Training throughput with the real input pipeline vs synthetic in-memory tensors.

If real data is within ~15% of synthetic, the input pipeline is not the bottleneck.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from training import dataset
from training.fit import FitConfig, build_starting_model, make_optimizer, peak_rss_mb
from training.metrics import LOSSES
from training.pipeline import make_dataset


def _timed_steps(model, batches, warmup: int, steps: int) -> float:
    """Seconds per step after `warmup` untimed steps; fetching the batch counts (that is the point)."""
    for _ in range(warmup):
        model.train_on_batch(*next(batches))
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(*next(batches))
    return (time.perf_counter() - started) / steps


def benchmark(config: FitConfig, steps: int = 10, warmup: int = 3, samples: int = 256) -> dict:
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if config.mixed_precision == "bfloat16" else "float32")
    train = dataset.validate(dataset.discover(config.data).train[:samples], "train")
    model = build_starting_model(config)
    model.compile(optimizer=make_optimizer(config, 100), loss=LOSSES[config.loss])

    real = iter(make_dataset(train, config.size, config.batch_size, config.fit_mode, training=True, seed=config.seed))
    for _ in range(len(train) // config.batch_size + 1):
        next(real)  # one pass fills the decode cache: measure the steady state, as in a long run

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (config.batch_size, config.size, config.size, 3)).astype(np.float32)
    y = (rng.random((config.batch_size, config.size, config.size, 1)) > 0.5).astype(np.float32)

    def synthetic():
        while True:
            yield x, y

    real_step = _timed_steps(model, real, warmup, steps)
    synthetic_step = _timed_steps(model, synthetic(), warmup, steps)
    return {
        "size": config.size,
        "batch_size": config.batch_size,
        "precision": config.mixed_precision,
        "encoder": "frozen" if config.freeze_encoder else f"trainable from {config.fine_tune_from}",
        "real_step_s": round(real_step, 3),
        "synthetic_step_s": round(synthetic_step, 3),
        "real_images_per_s": round(config.batch_size / real_step, 2),
        "synthetic_images_per_s": round(config.batch_size / synthetic_step, 2),
        "real_vs_synthetic": round(real_step / synthetic_step, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
