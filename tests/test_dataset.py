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


def _blob_proportions(masks: np.ndarray) -> list[float]:
    """Height / width of the mask's blob in each crop that holds it whole (clear of the crop's border)."""
    proportions = []
    for mask in masks[..., 0] > 0.5:
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if len(rows) and rows[0] > 0 and cols[0] > 0 and rows[-1] < mask.shape[0] - 1 and cols[-1] < mask.shape[1] - 1:
            proportions.append((rows[-1] - rows[0] + 1) / (cols[-1] - cols[0] + 1))
    return proportions


def test_own_shape_crops_have_the_aspect_views_shape_and_the_photos_proportions(tmp_path):
    from service.fitting import aspect_area_shape
    from tests.conftest import kaggle_layout
    from training.pipeline import make_dataset as make_tf_dataset

    root = kaggle_layout(tmp_path, {"wide": wide_photo_of_a_square(), "tall": tall_photo_of_a_square()})
    samples = dataset.load_splits(root).train * 16
    stream = make_tf_dataset(samples, size=48, batch_size=4, training=True, seed=3, own_shape_fraction=0.5)
    batches = [(images.numpy(), masks.numpy()) for images, masks in stream.take(24)]

    wide_view, tall_view = aspect_area_shape(180, 60, 48), aspect_area_shape(60, 180, 48)
    shapes = {images.shape[1:3] for images, _ in batches}
    assert shapes == {(48, 48), wide_view, tall_view}  # the squares, and each photo's aspect view
    for images, masks in batches:
        assert images.shape[0] == masks.shape[0] == 4 and masks.shape[1:3] == images.shape[1:3]
    in_view = [masks for images, masks in batches if images.shape[1:3] == wide_view]
    assert 0.75 < np.median(_blob_proportions(np.concatenate(in_view))) < 1.35  # the square person, square


def wide_photo_of_a_square() -> tuple[Image.Image, np.ndarray]:
    """A 3:1 photo whose person is a square: stretched to the model's square input it stands 3x taller than wide."""
    photo = np.full((60, 180, 3), 60, np.uint8)
    mask = np.zeros((60, 180), np.uint8)
    photo[22:38, 82:98], mask[22:38, 82:98] = 230, 1
    return Image.fromarray(photo), mask


def tall_photo_of_a_square() -> tuple[Image.Image, np.ndarray]:
    """The wide photo turned on its side: 1:3, its person still a square."""
    photo, mask = wide_photo_of_a_square()
    return photo.transpose(Image.Transpose.TRANSPOSE), mask.T.copy()


def test_true_aspect_crops_show_the_photo_in_its_own_proportions(tmp_path):
    from tests.conftest import kaggle_layout
    from training.pipeline import make_dataset as make_tf_dataset

    root = kaggle_layout(tmp_path, {"wide": wide_photo_of_a_square()})
    samples = dataset.load_splits(root).train * 16

    def proportions(fraction):
        stream = make_tf_dataset(samples, size=48, batch_size=16, training=True, seed=3, true_aspect_fraction=fraction)
        return _blob_proportions(np.concatenate([masks.numpy() for _, masks in stream.take(2)]))

    stretched, undistorted = proportions(0.0), proportions(1.0)
    assert len(stretched) >= 8 and len(undistorted) >= 8
    assert 2.2 < np.median(stretched) < 4.0  # the square, stretched 3x
    assert 0.75 < np.median(undistorted) < 1.35  # the square, square again
