"""Hard-photo mining (training.hard_photos) with the shipped model, and the training stream that uses it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.conftest import PHOTOS, SHIPPED_MODEL, kaggle_layout, make_dataset
from training import dataset, hard_photos
from training.cli import main
from training.scores import image_iou

PERSON_PHOTO = PHOTOS / "pexels-photo-374680.jpg"  # its true mask lies beside it as .png


def test_mining_scores_the_cut_map_as_the_evaluation_does():
    probability = np.array([[0.9, 0.6], [0.4, 0.1]], np.float32)
    assert image_iou(probability, np.array([[1, 0], [0, 0]])) == pytest.approx(1 / 2)
    assert image_iou(probability, np.array([[1, 1], [1, 0]])) == pytest.approx(2 / 3)
    assert image_iou(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0  # nothing to find, nothing found
    assert image_iou(probability, np.zeros((2, 2))) == 0.0


def test_mining_scores_each_training_photo_and_keeps_the_ones_the_model_gets_wrong(tmp_path):
    photo = Image.open(PERSON_PHOTO).convert("RGB")
    truth = (np.asarray(Image.open(PERSON_PHOTO.with_suffix(".png")).convert("L")) > 0).astype(np.uint8)
    wall = Image.new("RGB", photo.size, (128, 124, 120))
    root = kaggle_layout(
        tmp_path / "data",
        {
            "labelled-person": (photo, truth),
            "unlabelled-person": (photo, np.zeros_like(truth)),  # the model finds a person the mask leaves out
            "wall": (wall, np.zeros_like(truth)),
        },
    )
    out = tmp_path / "mined.json"
    assert main(["mine-photos", str(SHIPPED_MODEL), "--data", str(root), "--out", str(out)]) == 0

    mined = json.loads(out.read_text())
    ious = {r["stem"]: r["iou"] for r in mined["records"]}
    assert ious["labelled-person"] > 0.9
    assert ious["unlabelled-person"] == 0.0
    assert ious["wall"] == 1.0
    assert (mined["photos"], mined["hard"]) == (3, 1)
    assert mined["mean_iou"] == pytest.approx(np.mean(list(ious.values())))

    samples = dataset.load_splits(root).train
    assert [s.stem for s in hard_photos.hard_photos(out, samples)] == ["unlabelled-person"]
    with pytest.raises(dataset.DatasetError, match="no hard photo"):
        hard_photos.hard_photos(out, [s for s in samples if s.stem != "unlabelled-person"])


def test_hard_photo_crops_are_drawn_from_the_mined_photos(tmp_path):
    from training.pipeline import make_dataset as make_tf_dataset

    noise = np.random.default_rng(0).integers(0, 255, (72, 96, 3), np.uint8)
    pictures = {f"empty-{i}": (Image.fromarray(noise), np.zeros((72, 96), np.uint8)) for i in range(6)}
    pictures["full"] = (Image.fromarray(noise), np.ones((72, 96), np.uint8))
    samples = dataset.load_splits(kaggle_layout(tmp_path / "data", pictures)).train
    hard = [s for s in samples if s.stem == "full"]

    def person_share(fraction: float) -> float:
        stream = make_tf_dataset(samples, 32, 8, training=True, hard_photos=hard, hard_photo_fraction=fraction)
        masks = np.concatenate([m.numpy() for _, m in stream.take(4)])
        return float((masks.reshape(len(masks), -1).mean(1) > 0.5).mean())

    assert person_share(1.0) == 1.0  # every crop comes from the one photo that is all person
    assert person_share(0.0) < 0.5  # one photo in seven otherwise
    assert 0.3 < person_share(0.5) < 0.9


@pytest.mark.parametrize(
    "options, message",
    [
        (["--hard-photo-fraction", "0.1"], "--hard-photos FILE"),
        (
            ["--hard-photos", "p.json", "--hard-photo-fraction", "0.6"]
            + ["--hard-negatives", "n.json", "--hard-negative-fraction", "0.4"],
            "must leave the photos' own crops a share",
        ),
    ],
)
def test_fit_refuses_hard_photo_options_it_cannot_use(tmp_path, capsys, options, message):
    shutil.rmtree(tmp_path, ignore_errors=True)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), *options])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_mine_photos_names_a_missing_model(tmp_path, capsys):
    root = make_dataset(tmp_path / "data", count=8)
    assert main(["mine-photos", str(tmp_path / "nope.onnx"), "--data", str(root), "--out", str(tmp_path / "m.json")]) == 2
    assert "nope.onnx" in capsys.readouterr().err and not (tmp_path / "m.json").exists()
