"""Dataset discovery and validation: both layouts, mask encodings, and each bad-dataset error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_dataset

dataset = pytest.importorskip("training.dataset", reason="the [train] extra is not installed")


def test_kaggle_layout_uses_split_files(tmp_path):
    root = make_dataset(tmp_path, count=12, layout="kaggle")
    splits = dataset.load_splits(root)
    assert [s.stem for s in splits.val] == ["sample-000", "sample-001", "sample-002"]
    assert len(splits.train) == 9
    assert all(s.mask.suffix == ".png" and s.image.suffix == ".jpg" for s in splits.train)


def test_folder_layout_splits_deterministically(tmp_path):
    root = make_dataset(tmp_path, count=20, layout="folders")
    first = dataset.load_splits(root, val_fraction=0.25, seed=3)
    again = dataset.load_splits(root, val_fraction=0.25, seed=3)
    other = dataset.load_splits(root, val_fraction=0.25, seed=4)
    assert len(first.val) == 5 and len(first.train) == 15
    assert [s.stem for s in first.val] == [s.stem for s in again.val]
    assert {s.stem for s in first.val} != {s.stem for s in other.val}
    assert not {s.stem for s in first.val} & {s.stem for s in first.train}


def test_missing_mask_is_named(tmp_path):
    root = make_dataset(tmp_path, count=12)
    (root / "masks" / "sample-005.png").unlink()
    with pytest.raises(dataset.DatasetError, match=r"(?s)1 of 9 samples in split 'train'.*sample-005: mask missing"):
        dataset.load_splits(root)


def test_size_mismatch_is_named(tmp_path):
    root = make_dataset(tmp_path, count=12)
    Image.new("L", (10, 10)).save(root / "masks" / "sample-007.png")
    with pytest.raises(dataset.DatasetError, match=r"sample-007: image is 72x56, mask is 10x10"):
        dataset.load_splits(root)


def test_unreadable_file_is_named(tmp_path):
    root = make_dataset(tmp_path, count=12)
    (root / "images" / "sample-004.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(dataset.DatasetError, match=r"sample-004: unreadable"):
        dataset.load_splits(root)


def test_empty_split_is_an_error(tmp_path):
    root = make_dataset(tmp_path, count=12)
    (root / "segmentation" / "val.txt").write_text("\n")
    with pytest.raises(dataset.DatasetError, match=r"split 'val' is empty"):
        dataset.load_splits(root)


def test_many_offenders_are_counted_and_skip_bad_drops_them(tmp_path):
    root = make_dataset(tmp_path, count=20)
    for i in range(8, 16):
        (root / "masks" / f"sample-{i:03d}.png").unlink()
    with pytest.raises(dataset.DatasetError) as info:
        dataset.load_splits(root)
    message = str(info.value)
    assert "8 of 15 samples" in message and message.count("mask missing") == dataset.MAX_NAMED_OFFENDERS
    splits = dataset.load_splits(root, skip_bad=True)
    assert len(splits.train) == 7


def test_missing_folders(tmp_path):
    with pytest.raises(dataset.DatasetError, match="images/ and a masks/"):
        dataset.load_splits(tmp_path)


@pytest.mark.parametrize("mask_scale", [1, 255])
def test_pipeline_reads_01_and_0255_masks_the_same(tmp_path, mask_scale):
    from training.pipeline import make_dataset as make_tf_dataset

    root = make_dataset(tmp_path, count=8, mask_scale=mask_scale)
    splits = dataset.load_splits(root)
    images, masks = next(iter(make_tf_dataset(splits.val, size=32, batch_size=2)))
    truth = np.asarray(Image.open(splits.val[0].mask).resize((32, 32), Image.BILINEAR), dtype=np.float32) / mask_scale
    assert images.shape == (2, 32, 32, 3) and masks.shape == (2, 32, 32, 1)
    assert float(np.max(masks)) == pytest.approx(1.0, abs=0.02)
    assert np.mean(np.abs(masks.numpy()[0, ..., 0] - truth)) < 0.05
