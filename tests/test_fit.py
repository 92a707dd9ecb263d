"""Real training runs at a tiny size: learning, run directory contents, resume, distribution."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

pytest.importorskip("tensorflow", reason="the [train] extra is not installed")
from tests.conftest import ROOT, TINY_EPOCHS  # noqa: E402
from training.fit import FitConfig, fit  # noqa: E402


def history(run_dir):
    with open(run_dir / "history.csv") as fh:
        return list(csv.DictReader(fh))


def test_run_directory_is_complete(tiny_run):
    for name in ("config.json", "history.csv", "state.json", "last.weights.h5", "best.weights.h5", "metrics.json", "curves.png"):
        assert (tiny_run / name).is_file(), name
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert {"iou", "pooled_iou", "precision", "recall", "f1"} <= metrics.keys()
    rows = history(tiny_run)
    assert [r["epoch"] for r in rows] == [str(epoch) for epoch in range(TINY_EPOCHS)]
    # The final metrics are the best epoch's weights on the same (whole) val split.
    assert metrics["iou"] == pytest.approx(max(float(r["val_iou"]) for r in rows), abs=1e-4)
    assert {"val_iou", "learning_rate", "images_per_second", "peak_rss_mb"} <= rows[0].keys()


def test_loss_goes_down_on_an_easy_set(tiny_run):
    losses = [float(r["loss"]) for r in history(tiny_run)]
    assert losses[-1] < 0.8 * losses[0], losses


def test_resume_continues_from_the_last_epoch_with_optimizer_state(tmp_path, tiny_run, eager_keras_steps):
    run = tmp_path / "resumed"
    subprocess.run(["cp", "-r", str(tiny_run), str(run)], check=True)
    config = FitConfig.load(run)
    config.out, config.epochs = str(run), TINY_EPOCHS + 1
    fit(config, resume=True)
    rows = history(run)
    assert [r["epoch"] for r in rows] == [str(epoch) for epoch in range(TINY_EPOCHS + 1)]  # nothing redone, one added
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == TINY_EPOCHS + 1
    # The step counter went on from the checkpoint: the optimizer state was restored, not restarted.
    assert state["optimizer_iterations"] == (TINY_EPOCHS + 1) * config.steps_per_epoch


def test_a_new_run_refuses_to_overwrite(tiny_run):
    config = FitConfig.load(tiny_run)
    with pytest.raises(FileExistsError, match="--resume"):
        fit(config)


def test_curves_of_a_run_and_a_clear_error_for_a_folder_that_is_not_one(tiny_run, tmp_path, capsys):
    from PIL import Image

    from training.cli import main

    out = tmp_path / "curves.png"
    assert main(["curves", str(tiny_run), "--out", str(out)]) == 0
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.width > 300
    assert main(["curves", str(tmp_path)]) == 2
    assert "history.csv" in capsys.readouterr().err


def test_cli_fit_help_explains_options():
    out = subprocess.run(
        [sys.executable, "-m", "training", "fit", "--help"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    for option in ("--backbone-weights", "--resume", "--mixed-precision", "--strategy", "--freeze-encoder", "--lr-schedule"):
        assert option in out


def test_cli_reports_a_bad_dataset_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "training", "fit", "--data", str(tmp_path), "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "error:" in result.stderr and "Traceback" not in result.stderr


MIRRORED_SCRIPT = """
import sys, tensorflow as tf
tf.config.run_functions_eagerly(True)  # as tests/conftest.py's eager_keras_steps, and why
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from training.fit import FitConfig, fit, make_strategy
assert make_strategy("mirrored").num_replicas_in_sync == 2
metrics = fit(FitConfig(data=sys.argv[1], out=sys.argv[2], size=32, batch_size=4, epochs=1, steps_per_epoch=3,
                        backbone_weights="none", strategy="mirrored"))
print("REPLICAS_OK", metrics["epochs_run"])
"""


def test_mirrored_strategy_on_two_logical_cpus(tmp_path, shapes_dataset):
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(shapes_dataset), str(tmp_path / "mirrored")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert "REPLICAS_OK 1" in result.stdout, result.stderr[-3000:]


def test_benchmark_tells_a_slow_input_pipeline(shapes_dataset, monkeypatch):
    import time

    import keras

    import training.benchmark as benchmark_module

    def small_model(config):  # the arithmetic under test does not need ResNet-50
        inputs = keras.Input((config.size, config.size, 3))
        return keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs))

    real_pipeline = benchmark_module.make_dataset

    def slow_pipeline(*args, **kwargs):
        for batch in real_pipeline(*args, **kwargs):
            time.sleep(0.05)  # 50 ms per batch of input work that the synthetic tensors do not have
            yield batch

    monkeypatch.setattr(benchmark_module, "build_starting_model", small_model)
    monkeypatch.setattr(benchmark_module, "make_dataset", slow_pipeline)
    config = FitConfig(data=str(shapes_dataset), out="", size=32, batch_size=4, backbone_weights="none")
    result = benchmark_module.benchmark(config, steps=4, warmup=1, samples=8)
    assert result["real_step_s"] >= 0.05 > result["synthetic_step_s"]
    assert result["real_vs_synthetic"] > 1.5 and result["real_images_per_s"] < result["synthetic_images_per_s"]


def test_cli_resume_keeps_the_saved_config_except_options_typed_again(tmp_path, monkeypatch):
    import training.fit as fit_module
    from training.cli import main

    saved = FitConfig(data="somewhere", out=str(tmp_path), size=96, epochs=3, lr=5e-4, loss="bce_dice")
    saved.save(tmp_path)
    calls = []
    monkeypatch.setattr(fit_module, "fit", lambda config, resume=False: calls.append((config, resume)) or {})
    assert main(["fit", "--resume", str(tmp_path), "--epochs", "7"]) == 0
    ((config, resume),) = calls
    assert resume and config.epochs == 7  # typed again: overrides
    assert (config.size, config.lr, config.loss, config.data) == (96, 5e-4, "bce_dice", "somewhere")  # kept


def test_training_on_squares_and_crops_of_the_aspect_views_shape(tmp_path):
    """`--own-shape-fraction`: batches of several shapes train one model whose weights load into the served build."""
    import numpy as np

    from tests.conftest import kaggle_layout, tiny_config
    from tests.test_dataset import tall_photo_of_a_square, wide_photo_of_a_square
    from training.model import build_model

    wide, tall = wide_photo_of_a_square(), tall_photo_of_a_square()
    root = kaggle_layout(tmp_path / "data", {"wide": wide, "tall": tall, "wide2": wide, "tall2": tall})
    config = tiny_config(root, tmp_path / "run", epochs=1, steps_per_epoch=6, batch_size=2, own_shape_fraction=0.7)
    metrics = fit(config)
    assert metrics["epochs_run"] == 1 and np.isfinite(metrics["loss"])
    with open(tmp_path / "run" / "history.csv") as history:
        assert np.isfinite(float(next(csv.DictReader(history))["loss"]))
    served = build_model(64, backbone_weights="none")
    served.load_weights(tmp_path / "run" / "best.weights.h5")
    assert served.predict(np.zeros((1, 64, 64, 3), np.float32), verbose=0).shape == (1, 64, 64, 1)
