"""Hard-negative mining (training.hard_negatives) with the shipped model, and the training stream that uses it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.conftest import PHOTOS, REAL_DATA, SHIPPED_MODEL, kaggle_layout, make_dataset
from training import dataset, hard_negatives
from training.cli import main

PERSON_PHOTO = PHOTOS / "pexels-photo-665321.jpg"  # a person across the middle 70% of the photo


def edge_strip_mask(width: int, height: int) -> np.ndarray:
    """A 'person' only in the right-most 8 px, so the largest person-free square is the middle of the photo."""
    mask = np.zeros((height, width), np.uint8)
    mask[:, -8:] = 1
    return mask


def test_mining_finds_the_person_a_mask_leaves_out_and_nothing_on_a_plain_wall(tmp_path):
    photo = Image.open(PERSON_PHOTO).convert("RGB")
    wall = Image.new("RGB", photo.size, (128, 124, 120))
    root = kaggle_layout(
        tmp_path / "data",
        {"unlabelled-person": (photo, edge_strip_mask(*photo.size)), "wall": (wall, edge_strip_mask(*wall.size))},
    )
    out = tmp_path / "mined.json"
    assert main(["mine-negatives", str(SHIPPED_MODEL), "--data", str(root), "--out", str(out)]) == 0

    mined = json.loads(out.read_text())
    areas = {r["stem"]: r["false_area"] for r in mined["records"]}
    assert areas["unlabelled-person"] > 0.1  # the real person fills much of the square
    assert areas["wall"] <= hard_negatives.FALSE_BLOB_SHARE
    assert (mined["squares"], mined["hard"]) == (2, 1)
    for record in mined["records"]:
        top, left, bottom, right = record["box"]
        assert right < 1 - 8 / photo.width  # clear of the labelled strip
        assert (bottom - top) * photo.height == pytest.approx((right - left) * photo.width, abs=0.02 * photo.height)

    samples = dataset.load_splits(root).train
    chosen, boxes = hard_negatives.hard_squares(out, samples)
    assert [s.stem for s in chosen] == ["unlabelled-person"] and boxes == [tuple(mined["records"][0]["box"])]
    with pytest.raises(dataset.DatasetError, match="no hard person-free square"):
        hard_negatives.hard_squares(out, [s for s in samples if s.stem == "wall"])


def test_hard_negative_crops_are_drawn_from_the_mined_squares(tmp_path):
    from training.person_free import training_box
    from training.pipeline import make_dataset as make_tf_dataset

    splits = dataset.load_splits(make_dataset(tmp_path, count=16, size=(96, 72)))
    with_square = [(s, box) for s, box in ((s, training_box(s.mask)) for s in splits.train) if box[2] > box[0]][:3]
    assert len(with_square) == 3
    hard, squares = [s for s, _ in with_square], [box for _, box in with_square]

    def masks(fraction: float) -> np.ndarray:
        stream = make_tf_dataset(
            splits.train, 32, 8, training=True, hard_negatives=(hard, squares), hard_negative_fraction=fraction
        )
        return np.concatenate([m.numpy() for _, m in stream.take(4)])

    only_hard, none_hard = masks(1.0), masks(0.0)
    # Every crop lies inside a person-free square: an empty mask, but for a trace of resampling blur at these tiny
    # sizes (the square keeps 2 px from the shape, under one pixel once the photo is cached at 40 px).
    assert only_hard.max() < 0.1
    assert (none_hard.reshape(len(none_hard), -1).max(1) > 0.5).mean() > 0.5  # the usual crops show the shape


def test_fit_refuses_a_hard_negative_fraction_without_a_mined_file(tmp_path, capsys):
    shutil.rmtree(tmp_path, ignore_errors=True)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--hard-negative-fraction", "0.1"])
    assert exit_info.value.code == 2
    assert "--hard-negatives FILE" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_mine_negatives_names_a_missing_model(tmp_path, capsys):
    root = make_dataset(tmp_path / "data", count=8)
    assert main(["mine-negatives", str(tmp_path / "nope.onnx"), "--data", str(root), "--out", str(tmp_path / "m.json")]) == 2
    assert "nope.onnx" in capsys.readouterr().err and not (tmp_path / "m.json").exists()


def test_a_photo_whose_mask_misses_a_person_is_never_a_person_free_square(tmp_path):
    from training.person_free import NO_BOX, training_box, unlabeled_people

    listed = sorted(unlabeled_people())[0]
    photo = Image.open(PERSON_PHOTO).convert("RGB")
    root = kaggle_layout(
        tmp_path / "data",
        {listed: (photo, edge_strip_mask(*photo.size)), "unlisted": (photo, edge_strip_mask(*photo.size))},
    )
    samples = {s.stem: s for s in dataset.load_splits(root).train}
    assert training_box(samples[listed].mask) == NO_BOX
    assert training_box(samples["unlisted"].mask) != NO_BOX

    # a file mined before the photo was listed still names its square: it is not drawn from
    square = list(training_box(samples["unlisted"].mask))
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"records": [{"stem": stem, "box": square, "false_area": 0.5} for stem in samples]}))
    chosen, _ = hard_negatives.hard_squares(old, list(samples.values()))
    assert [s.stem for s in chosen] == ["unlisted"]


@pytest.mark.skipif(not REAL_DATA.exists(), reason="needs ../shared/data/people_segmentation")
def test_every_photo_listed_as_missing_a_person_is_a_training_photo():
    from training.person_free import unlabeled_people

    train = {s.stem for s in dataset.discover(REAL_DATA).train}
    assert unlabeled_people() and unlabeled_people() <= train


def test_the_contact_sheet_shows_the_hard_squares_hardest_first(tmp_path):
    from scripts.hard_squares_sheet import TILE, contact_sheet, hardest

    red, blue = tmp_path / "red.jpg", tmp_path / "blue.jpg"
    Image.new("RGB", (200, 100), (220, 20, 20)).save(red)
    Image.new("RGB", (200, 100), (20, 20, 220)).save(blue)
    records = [
        {"stem": "red", "box": [0.0, 0.0, 1.0, 0.5], "false_area": 0.02},
        {"stem": "blue", "box": [0.0, 0.5, 1.0, 1.0], "false_area": 0.3},
        {"stem": "easy", "box": [0.0, 0.0, 1.0, 0.5], "false_area": 0.0},
    ]
    ranked = hardest(records)
    assert [r["stem"] for r in ranked] == ["blue", "red"]
    sheet = np.asarray(contact_sheet(ranked, {"red": red, "blue": blue}))
    assert sheet.shape[0] == TILE
    assert sheet[TILE // 2, TILE // 2, 2] > 150 and sheet[TILE // 2, TILE + TILE // 2, 0] > 150  # blue first, then red
