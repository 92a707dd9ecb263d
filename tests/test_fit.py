"""Real training runs at a tiny size: learning, run directory contents, resume, distribution."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="the [train] extra is not installed")
from tests.conftest import ROOT, TINY_EPOCHS, tiny_config  # noqa: E402
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


def test_resume_continues_from_the_last_epoch_with_optimizer_state(tmp_path, tiny_run):
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

    def small_model(size, *args, **kwargs):  # the arithmetic under test does not need ResNet-50
        inputs = keras.Input((size, size, 3))
        return keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs))

    real_pipeline = benchmark_module.make_dataset

    def slow_pipeline(*args, **kwargs):
        for batch in real_pipeline(*args, **kwargs):
            time.sleep(0.05)  # 50 ms per batch of input work that the synthetic tensors do not have
            yield batch

    monkeypatch.setattr(benchmark_module, "build_model", small_model)
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


SHIPPED_WEIGHTS = ROOT / "models" / "cutout-person.weights.h5"


def fingerprints(arrays) -> list[tuple]:
    """Shape and sum of every array, sorted: equal lists mean the same weights (in any layer order)."""
    return sorted((tuple(a.shape), round(float(np.asarray(a, np.float64).sum()), 3)) for a in arrays)


def stored_arrays(path):
    import h5py

    arrays = []
    with h5py.File(path, "r") as stored:
        stored.visititems(lambda _name, item: arrays.append(item[()]) if isinstance(item, h5py.Dataset) else None)
    return arrays


@pytest.mark.skipif(not SHIPPED_WEIGHTS.exists(), reason="the release's Keras weights are not in models/")
def test_fine_tuning_starts_from_the_shipped_weights(tmp_path, shapes_dataset):
    """`fit --init-from models/cutout-person.weights.h5` on a fresh machine: no ImageNet file, the file's weights."""
    from training.model import build_model

    model = build_model(64, backbone_weights="none")
    model.load_weights(SHIPPED_WEIGHTS)
    assert fingerprints(w.numpy() for w in model.weights) == fingerprints(stored_arrays(SHIPPED_WEIGHTS))
    shipped_head = model.get_layer("logits").kernel.numpy()

    out = tmp_path / "tuned"
    # backbone_weights="imagenet" would need a download here: with --init-from it must not be used.
    config = tiny_config(shapes_dataset, out, init_from=str(SHIPPED_WEIGHTS), backbone_weights="imagenet")
    config.epochs, config.steps_per_epoch, config.lr = 1, 1, 1e-6
    fit(config)
    tuned = build_model(64, backbone_weights="none")
    tuned.load_weights(out / "best.weights.h5")
    change = np.abs(tuned.get_layer("logits").kernel.numpy() - shipped_head).max()
    assert 0 < change < 1e-3  # one tiny step away from the shipped model, not from a fresh initialisation


@pytest.mark.skipif(not SHIPPED_WEIGHTS.exists(), reason="the release's Keras weights are not in models/")
def test_a_release_becomes_a_run_directory_on_a_fresh_clone(tmp_path, capsys):
    """`training release-run`: the weights file + its card's training config, readable by export/average."""
    from training.cli import main

    out = tmp_path / "release"
    assert main(["release-run", str(SHIPPED_WEIGHTS), "--out", str(out)]) == 0
    card = json.loads((ROOT / "models" / "cutout-person.json").read_text())["training_config"]
    config = FitConfig.load(out)
    assert (config.size, config.loss, config.seed, config.data) == (card["size"], card["loss"], card["seed"], None)
    assert fingerprints(stored_arrays(out / "best.weights.h5")) == fingerprints(stored_arrays(SHIPPED_WEIGHTS))

    assert main(["release-run", str(SHIPPED_WEIGHTS), "--out", str(out)]) == 2  # never overwrites a run
    assert "already exists" in capsys.readouterr().err
    no_card = tmp_path / "lone.weights.h5"
    no_card.write_bytes(SHIPPED_WEIGHTS.read_bytes())
    assert main(["release-run", str(no_card), "--out", str(tmp_path / "other")]) == 2
    assert "lone.json not found" in capsys.readouterr().err
