"""The GPU path without TensorFlow (training.portable): the pack, numpy augmentation, the run itself and the
weights coming back in chunks. Run here on the TensorFlow backend; the torch backend takes the same code."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from training import dataset
from training.portable import MANIFEST, Pack, augment, batches, load_chunks, pack, save_chunks, train

pytest.importorskip("tensorflow", reason="the [train] extra is not installed")
from conftest import TINY_SIZE  # noqa: E402

from training.export import ExportError, import_weights, load_trained_model  # noqa: E402


def test_the_pack_holds_every_training_photo_with_its_mask(shapes_dataset, tmp_path):
    summary = pack(shapes_dataset, tmp_path / "train.npz", side=48, quality=90)
    samples = dataset.discover(shapes_dataset).train
    assert summary["photos"] == summary["of"] == len(samples)
    data = Pack.load(tmp_path / "train.npz")
    photo, mask = data.decoded(0)
    assert photo.shape == (48, 48, 3) and mask.shape == (48, 48) and set(np.unique(mask)) <= {0, 255}
    truth = np.asarray(Image.open(samples[0].mask).convert("L").resize((48, 48), Image.NEAREST)) > 0
    assert ((mask > 0) & truth).sum() / ((mask > 0) | truth).sum() > 0.85
    assert data.person_free.shape == (len(samples), 4)

    small = pack(shapes_dataset, tmp_path / "small.npz", side=48, max_mb=summary["bytes"] / 2**20 / 3)
    assert 0 < small["photos"] < len(samples) and small["bytes"] < summary["bytes"] / 2


def test_hard_negatives_are_always_packed_and_drawn_as_empty_crops(shapes_dataset, tmp_path):
    from training.person_free import NO_BOX, training_box

    samples = dataset.discover(shapes_dataset).train
    chosen = max(i for i, s in enumerate(samples) if training_box(s.mask) != NO_BOX)  # one with a person-free square
    square = list(training_box(samples[chosen].mask))
    records = [{"stem": s.stem, "box": square, "false_area": 0.3 if i == chosen else 0.0} for i, s in enumerate(samples)]
    mined = tmp_path / "hard.json"
    mined.write_text(json.dumps({"records": records}))
    whole = pack(shapes_dataset, tmp_path / "all.npz", side=48)
    small = pack(shapes_dataset, tmp_path / "small.npz", side=48, max_mb=whole["bytes"] / 2**20 / 4, hard_negatives=mined)
    assert small["photos"] < len(samples) and small["hard_negatives"] == 1
    data = Pack.load(tmp_path / "small.npz")
    (hard,) = data.hard_indices
    np.testing.assert_allclose(data.hard_negatives[hard], square)
    expected, _ = Pack.load(tmp_path / "all.npz").decoded(chosen)  # the same photo, packed beside the others
    np.testing.assert_array_equal(data.decoded(hard)[0], expected)

    images, targets = next(batches(data, 32, 4, seed=0, negative_fraction=0.0, zoom_out_fraction=0.0, hard_negative_fraction=1.0))
    assert images.shape == (4, 32, 32, 3) and targets.max() == 0.0  # all four are crops of the hard square
    _, usual = next(batches(data, 32, 4, seed=0, negative_fraction=0.0, zoom_out_fraction=0.0))
    assert usual.max() > 0.5
    with pytest.raises(ValueError, match="hard negatives"):
        next(batches(Pack.load(tmp_path / "all.npz"), 32, 4, 0, 0.0, 0.0, hard_negative_fraction=0.1))


def test_augmentation_crops_people_and_person_free_squares():
    photo = np.full((100, 100, 3), 90, np.uint8)
    mask = np.zeros((100, 100), np.uint8)
    photo[20:80, 40:60], mask[20:80, 40:60] = 200, 255  # the person: 12% of the photo
    rng = np.random.default_rng(0)
    no_square = np.zeros(4, np.float32)
    for _ in range(20):
        image, target = augment(photo, mask, no_square, 32, rng)
        assert image.shape == (32, 32, 3) and target.shape == (32, 32, 1)
        assert 0.0 <= image.min() and image.max() <= 255.0 and 0.0 <= target.min() and target.max() <= 1.0
    usual = [augment(photo, mask, no_square, 32, rng)[1].mean() for _ in range(30)]
    zoomed = [augment(photo, mask, no_square, 32, rng, zoom_out_fraction=1.0)[1].mean() for _ in range(30)]
    assert np.mean(zoomed) < 0.7 * np.mean(usual)  # zoomed out: the person is smaller in the frame
    corner = np.array([0.0, 0.0, 0.15, 0.35], np.float32)  # top-left, clear of the person
    negatives = [augment(photo, mask, corner, 32, rng, negative_fraction=1.0)[1].max() for _ in range(20)]
    assert max(negatives) == 0.0


def test_weights_come_back_in_chunks_and_become_a_run(tiny_run, tmp_path):
    from training.cli import main

    model, _ = load_trained_model(tiny_run, TINY_SIZE)
    shifted = [w + 1.0 for w in model.get_weights()]
    manifest = save_chunks(shifted, tmp_path / "chunks", chunk_bytes=12 * 2**20, backend="test")
    assert len(manifest["files"]) > 1 and manifest["count"] == len(shifted)
    assert all((tmp_path / "chunks" / name).stat().st_size < 12 * 2**20 + 2**16 for name in manifest["files"])
    assert all(np.array_equal(a, b) for a, b in zip(load_chunks(tmp_path / "chunks"), shifted, strict=True))

    out = tmp_path / "imported"
    assert main(["import-weights", str(tmp_path / "chunks"), "--config-from", str(tiny_run), "--out", str(out)]) == 0
    imported, _ = load_trained_model(out, TINY_SIZE)
    for got, expected in zip(imported.get_weights(), shifted, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-6)

    save_chunks(shifted[:-1], tmp_path / "short")
    with pytest.raises(ExportError, match="do not match"):
        import_weights(tiny_run, tmp_path / "short", tmp_path / "bad")


def test_a_portable_run_fine_tunes_and_reports(shapes_dataset, tiny_run, tmp_path, eager_keras_steps):
    pack(shapes_dataset, tmp_path / "train.npz", side=48)
    init = tmp_path / "init.weights.h5"
    load_trained_model(tiny_run, TINY_SIZE)[0].save_weights(init)
    result = train(
        tmp_path / "train.npz",
        init,
        tmp_path / "out",
        minutes=0.001,
        size=TINY_SIZE,
        batch_size=2,
        precision="float32",
        steps_per_epoch=2,
    )
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    # the budget (60 ms) is spent within the first step: the run stops after it, one batch of 2 photos
    assert manifest == result and result["images"] == 2 and np.isfinite(result["epoch_losses"]).all()
    before = load_trained_model(tiny_run, TINY_SIZE)[0].get_weights()
    after = load_chunks(tmp_path / "out")
    assert any(not np.allclose(a, b) for a, b in zip(after, before, strict=True))  # it trained


def test_the_command_line_passes_typed_options_and_trains_defaults(monkeypatch):
    import functools

    from training import portable

    received = {}

    @functools.wraps(portable.train)  # keeps train()'s signature, where the command line reads its defaults
    def record(**options):
        received.update(options)
        return {}

    monkeypatch.setattr(portable, "train", record)
    portable.main(["train.npz", "--init-from", "w.h5", "--out", "o", "--lr", "2e-5", "--loss", "bce_lovasz"])
    assert received["pack_path"] == "train.npz" and received["lr"] == 2e-5 and received["loss"] == "bce_lovasz"
    assert (received["minutes"], received["size"], received["batch_size"]) == (8.0, 384, 32)  # train()'s own defaults
    assert isinstance(received["steps_per_epoch"], int) and isinstance(received["negative_fraction"], float)


def test_true_aspect_crops_are_packed_and_drawn(tmp_path):
    from tests.conftest import kaggle_layout
    from tests.test_dataset import _blob_proportions, wide_photo_of_a_square

    root = kaggle_layout(tmp_path / "data", {"wide": wide_photo_of_a_square()})
    pack(root, tmp_path / "wide.npz", side=48, quality=95)
    data = Pack.load(tmp_path / "wide.npz")
    np.testing.assert_allclose(data.aspects, [3.0])
    photo, _ = data.decoded(0)
    assert photo.shape == (48, 48, 3)  # packed stretched, as before

    def proportions(fraction):
        stream = batches(data, 48, 1, seed=5, negative_fraction=0.0, zoom_out_fraction=0.0, true_aspect_fraction=fraction)
        return _blob_proportions(np.concatenate([next(stream)[1] for _ in range(64)]))

    stretched, undistorted = proportions(0.0), proportions(1.0)
    assert len(stretched) >= 8 and len(undistorted) >= 8
    assert 2.2 < np.median(stretched) < 4.0 and 0.75 < np.median(undistorted) < 1.35

    old = dict(np.load(tmp_path / "wide.npz"))
    del old["aspects"]
    np.savez(tmp_path / "old.npz", **old)  # a pack made before the photos' proportions were packed
    assert Pack.load(tmp_path / "old.npz").aspects is None
    with pytest.raises(ValueError, match="proportions"):
        next(batches(Pack.load(tmp_path / "old.npz"), 48, 1, 0, 0.0, 0.0, true_aspect_fraction=0.5))
