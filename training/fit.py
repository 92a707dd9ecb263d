"""Train the segmenter into a run directory that can always be resumed.

RUN_DIR/
  config.json            every option of the run (resume reads it back)
  history.csv            one row per epoch: losses, metrics, learning rate, img/s, memory
  state.json             last finished epoch, best score, early-stopping / plateau counters
  last.weights.h5        weights and optimizer state after the last finished epoch
  best.weights.h5        weights of the best validation epoch (restored at the end)
  metrics.json           final validation metrics of the best weights
  curves.png             loss and IoU curves
"""

from __future__ import annotations

import json
import math
import resource
import sys
import time
from pathlib import Path

import keras
import tensorflow as tf

from training import dataset, hard_negatives, hard_photos, person_free
from training.config import FitConfig
from training.metrics import LOSSES, all_metrics
from training.model import build_model
from training.pipeline import make_dataset

MONITOR = "val_iou"  # mean per-image IoU on the validation split: the number the product is judged on


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "mirrored":
        # All GPUs, or every logical CPU device when there is no GPU (how the tests exercise it).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()  # cluster layout from TF_CONFIG
    if name == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"unknown strategy {name!r}")


def make_optimizer(config: FitConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    if config.lr_schedule == "cosine":
        total = config.epochs * steps_per_epoch
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.lr * 0.1 if config.warmup_steps else config.lr,
            decay_steps=max(1, total - config.warmup_steps),
            alpha=0.02,
            warmup_target=config.lr if config.warmup_steps else None,
            warmup_steps=config.warmup_steps,
        )
    elif config.lr_schedule == "plateau":
        learning_rate = config.lr
    else:
        raise ValueError(f"unknown lr schedule {config.lr_schedule!r}")
    return keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=config.clipnorm)


def current_lr(optimizer: keras.optimizers.Optimizer) -> float:
    lr = optimizer.learning_rate
    return float(keras.ops.convert_to_numpy(lr))


# ---- resumable callbacks ---------------------------------------------------------------------------
class _RestoresCounters:
    """Keras resets early-stopping/plateau counters in on_train_begin; a resumed run puts them back."""

    COUNTERS = ("wait", "best", "cooldown_counter")

    def __init__(self, *args, counters: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.restored_counters = counters or {}

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        for name, value in self.restored_counters.items():
            setattr(self, name, value)

    def counters(self) -> dict:
        return {n: float(getattr(self, n)) for n in self.COUNTERS if hasattr(self, n)}


class ResumableEarlyStopping(_RestoresCounters, keras.callbacks.EarlyStopping):
    pass


class ResumableReduceLROnPlateau(_RestoresCounters, keras.callbacks.ReduceLROnPlateau):
    pass


class EpochStats(keras.callbacks.Callback):
    """Adds the learning rate, training throughput and peak memory to each epoch's logs (and so the CSV)."""

    def __init__(self, images_per_epoch: int):
        super().__init__()
        self.images_per_epoch = images_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["learning_rate"] = current_lr(self.model.optimizer)  # Keras logs it only for a constant rate
        logs["epoch_seconds"] = time.perf_counter() - self.started
        logs["images_per_second"] = self.images_per_epoch / logs["epoch_seconds"]
        logs["peak_rss_mb"] = peak_rss_mb()


class RunCheckpoint(keras.callbacks.Callback):
    """Every epoch: last weights + optimizer state + counters; best weights when MONITOR improves."""

    def __init__(self, run_dir: Path, state: dict, stateful_callbacks: dict):
        super().__init__()
        self.run_dir, self.state, self.stateful_callbacks = run_dir, state, stateful_callbacks

    def on_epoch_end(self, epoch, logs=None):
        score = float(logs.get(MONITOR, float("nan")))
        if not math.isnan(score) and score > self.state.get("best_score", -1.0):
            self.state.update(best_score=score, best_epoch=epoch + 1)
            self.model.save_weights(self.run_dir / "best.weights.h5")
        self.model.save_weights(self.run_dir / "last.weights.h5")  # Keras includes the optimizer's variables
        self.state["epoch"] = epoch + 1
        self.state["optimizer_iterations"] = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.state["counters"] = {name: cb.counters() for name, cb in self.stateful_callbacks.items()}
        # Written last and atomically: a crash mid-epoch leaves the previous consistent state.
        tmp = self.run_dir / "state.json.tmp"
        tmp.write_text(json.dumps(self.state, indent=2))
        tmp.replace(self.run_dir / "state.json")


def initial_weights_path(init_from: str) -> Path:
    path = Path(init_from)
    return path / "best.weights.h5" if path.is_dir() else path


def build_starting_model(config: FitConfig, load_init: bool = True) -> keras.Model:
    """The uncompiled training model, from ImageNet (or none) or from --init-from weights."""
    # Whole-model weights (a file or a run) hold the encoder too: no ImageNet file needed then.
    backbone_weights = "none" if config.init_from else config.backbone_weights
    # Crops of the aspect view's shape come in batches of several shapes: the graph takes any.
    input_size = None if config.own_shape_fraction else config.size
    model = build_model(input_size, backbone_weights, config.fine_tune_from, config.freeze_encoder, for_training=True)
    if config.init_from and load_init:
        model.load_weights(initial_weights_path(config.init_from))
    return model


# ---- the run -----------------------------------------------------------------------------------------
def _open_run(config: FitConfig, resume: bool) -> tuple[Path, dict]:
    """The run folder and its saved state ({} for a new run)."""
    run_dir = Path(config.out)
    state = json.loads((run_dir / "state.json").read_text()) if resume and (run_dir / "state.json").exists() else {}
    if not resume and (run_dir / "state.json").exists():
        raise FileExistsError(f"{run_dir} already holds a run; use --resume {run_dir} to continue it")
    run_dir.mkdir(parents=True, exist_ok=True)
    config.save(run_dir)
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if config.mixed_precision == "bfloat16" else "float32")
    return run_dir, state


def _datasets(config: FitConfig, splits: dataset.Splits) -> tuple:
    val_samples = splits.val[: config.val_limit] if config.val_limit else splits.val
    hard = hard_negatives.hard_squares(config.hard_negatives, splits.train) if config.hard_negative_fraction else None
    train_ds = make_dataset(
        splits.train,
        config.size,
        config.batch_size,
        config.fit_mode,
        training=True,
        seed=config.seed,
        person_free_boxes=person_free.training_boxes([s.mask for s in splits.train]) if config.negative_fraction else None,
        negative_fraction=config.negative_fraction,
        zoom_out_fraction=config.zoom_out_fraction,
        hard_negatives=hard,
        hard_negative_fraction=config.hard_negative_fraction,
        hard_photos=hard_photos.hard_photos(config.hard_photos, splits.train) if config.hard_photo_fraction else None,
        hard_photo_fraction=config.hard_photo_fraction,
        true_aspect_fraction=config.true_aspect_fraction,
        own_shape_fraction=config.own_shape_fraction,
    )
    return train_ds, make_dataset(val_samples, config.size, config.batch_size, config.fit_mode)


def _model(config: FitConfig, state: dict, run_dir: Path, steps_per_epoch: int) -> keras.Model:
    """The compiled model: from scratch / ImageNet, from --init-from weights, or where a resumed run stopped."""
    with make_strategy(config.strategy).scope():
        model = build_starting_model(config, load_init=not state)
        model.compile(optimizer=make_optimizer(config, steps_per_epoch), loss=LOSSES[config.loss], metrics=all_metrics())
        if state:
            # A built optimizer makes load_weights restore its moments and step count too.
            model.optimizer.build(model.trainable_variables)
            model.load_weights(run_dir / "last.weights.h5")
            print(f"[fit] resumed {run_dir} after epoch {state['epoch']}, lr {current_lr(model.optimizer):.2e}")
    return model


def _callbacks(config: FitConfig, state: dict, run_dir: Path, steps_per_epoch: int) -> list:
    counters = state.get("counters", {})
    stateful = {
        "early_stopping": ResumableEarlyStopping(
            monitor=MONITOR, mode="max", patience=config.patience, counters=counters.get("early_stopping")
        )
    }
    if config.lr_schedule == "plateau":
        stateful["plateau"] = ResumableReduceLROnPlateau(
            monitor=MONITOR,
            mode="max",
            factor=config.plateau_factor,
            patience=config.plateau_patience,
            min_lr=config.min_lr,
            verbose=1,
            counters=counters.get("plateau"),
        )
    return [
        EpochStats(steps_per_epoch * config.batch_size),
        *stateful.values(),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        RunCheckpoint(run_dir, state, stateful),
    ]


def _final_metrics(model, config: FitConfig, state: dict, run_dir: Path, splits: dataset.Splits) -> dict:
    """Validation of the best weights on the whole split, written to metrics.json, with the curves."""
    # Early stopping restores the best weights here, from disk, so it also holds across resumes.
    if (run_dir / "best.weights.h5").exists():
        model.load_weights(run_dir / "best.weights.h5")
    full_val = make_dataset(splits.val, config.size, config.batch_size, config.fit_mode)
    scores = model.evaluate(full_val, verbose=0, return_dict=True)
    metrics = {
        "split": "val",
        "images": len(splits.val),
        "size": config.size,
        "best_epoch": state.get("best_epoch"),
        "epochs_run": state.get("epoch", 0),
        **{k: float(v) for k, v in scores.items()},
        "peak_rss_mb": peak_rss_mb(),
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print("[fit] validation of best weights: " + ", ".join(f"{k}={v:.4f}" for k, v in scores.items()))
    try:
        from training.report import plot_history

        plot_history(run_dir / "history.csv", run_dir / "curves.png")
    except Exception as exc:  # a missing plot must not lose a finished run
        print(f"[fit] could not plot curves: {exc}")
    return metrics


def fit(config: FitConfig, resume: bool = False) -> dict:
    """Train (or resume) a run; returns the final validation metrics of the best weights."""
    run_dir, state = _open_run(config, resume)
    splits = dataset.load_splits(config.data, config.val_fraction, config.seed, config.skip_bad)
    steps_per_epoch = config.steps_per_epoch or max(1, len(splits.train) // config.batch_size)
    train_ds, val_ds = _datasets(config, splits)
    print(f"[fit] train {len(splits.train)} / val {len(splits.val)} images, {steps_per_epoch} steps per epoch")
    model = _model(config, state, run_dir, steps_per_epoch)
    initial_epoch = state.get("epoch", 0)
    if initial_epoch < config.epochs:
        model.fit(
            train_ds,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            validation_data=val_ds,
            callbacks=_callbacks(config, state, run_dir, steps_per_epoch),
            verbose=1 if sys.stdout.isatty() else 2,
        )
    return _final_metrics(model, config, state, run_dir, splits)
