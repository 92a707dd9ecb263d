"""Fine-tuning the release on any machine: its Keras weights file is the starting point, and a release
becomes a run folder that export and average read."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="the [train] extra is not installed")
from tests.conftest import ROOT, tiny_config  # noqa: E402
from training.fit import FitConfig, fit  # noqa: E402

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
def test_fine_tuning_starts_from_the_shipped_weights(tmp_path, shapes_dataset, eager_keras_steps):
    """`fit --init-from models/cutout-person.weights.h5` on a fresh machine: no ImageNet file, the file's weights."""
    from training.fit import build_starting_model
    from training.model import build_model

    out = tmp_path / "tuned"
    # backbone_weights="imagenet" would need a download here: with --init-from it must not be used.
    config = tiny_config(shapes_dataset, out, init_from=str(SHIPPED_WEIGHTS), backbone_weights="imagenet")
    model = build_starting_model(config)  # what fit and benchmark start from
    assert fingerprints(w.numpy() for w in model.weights) == fingerprints(stored_arrays(SHIPPED_WEIGHTS))
    shipped_head = model.get_layer("logits").kernel.numpy()

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
