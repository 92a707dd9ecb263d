"""The model that ships: found people on real photos, background left out, metadata matches the card."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from service import __version__
from service.removal import MaskOptions, segment
from service.segmenter import Segmenter
from service.settings import DEFAULT_GPU_MODEL
from tests.conftest import INT8_WEIGHT_LIMIT, ROOT, SHIPPED_MODEL, int8_weight_range, photo_mask

pytestmark = pytest.mark.skipif(not SHIPPED_MODEL.exists(), reason="the default model has not been shipped yet")
CARD = ROOT / "models" / "README.md"
CARD_JSON = ROOT / "models" / "cutout-person.json"


# The CUDA file is optional; when it ships, it must be as good as the CPU file (it is checked here on CPU).
SHIPPED_FILES = [SHIPPED_MODEL] + ([DEFAULT_GPU_MODEL] if DEFAULT_GPU_MODEL.exists() else [])


@pytest.fixture(scope="module", params=SHIPPED_FILES, ids=lambda path: path.name)
def any_shipped(request):
    return Segmenter(request.param, provider="cpu")


@pytest.fixture(scope="module")
def segmenter():
    return Segmenter(SHIPPED_MODEL, provider="cpu")


def test_people_are_found_and_background_is_not(any_shipped, photos):
    segmenter = any_shipped
    ious = []
    for photo in photos:
        prob = segment(segmenter, Image.open(photo).convert("RGB"), MaskOptions()).alpha / 255.0
        truth = photo_mask(photo) > 0.5
        pred = prob >= 0.5
        ious.append((pred & truth).sum() / max(1, (pred | truth).sum()))
        assert prob[truth].mean() > 0.7, photo.name  # the person is found
        assert prob[~truth].mean() < 0.15, photo.name  # the background is not
    assert np.mean(ious) > 0.8, ious


def test_metadata_matches_the_card(segmenter):
    card = json.loads(CARD_JSON.read_text())
    meta = segmenter.info.metadata
    assert meta["cutout.name"] == card["name"] == SHIPPED_MODEL.stem
    assert int(meta["cutout.input_size"]) == card["input_size"]
    assert meta["cutout.precision"] == card["precision"]
    assert meta["cutout.fit"] == card["fit"]
    assert meta["cutout.version"] == card["version"] == __version__  # the release it ships in
    val = json.loads(meta["cutout.val_metrics"])
    assert val["mean_iou"] == pytest.approx(card["val_metrics"]["mean_iou"], abs=1e-9)
    text = CARD.read_text()
    assert f"{val['mean_iou']:.4f}" in text and "non-commercial" in text.lower()
    assert re.search(rf"\b{card['input_size']}\b", text)


def test_the_cpu_file_computes_the_same_mask_with_or_without_vnni():
    pytest.importorskip("onnx", reason="reading the graph's weights needs the [train] extra")
    low, high = int8_weight_range(SHIPPED_MODEL)
    assert -INT8_WEIGHT_LIMIT <= low < 0 < high <= INT8_WEIGHT_LIMIT


@pytest.mark.skipif(not DEFAULT_GPU_MODEL.exists(), reason="no CUDA file ships with this release")
def test_the_cuda_file_is_the_same_model_in_fp16(segmenter):
    gpu = Segmenter(DEFAULT_GPU_MODEL, provider="cpu").info.metadata
    cpu = segmenter.info.metadata
    assert gpu["cutout.precision"] == "fp16"
    for key in ("cutout.input_size", "cutout.fit", "cutout.tta", "cutout.run", "cutout.training_config"):
        assert gpu[key] == cpu[key], key
    assert gpu.get("cutout.views") == cpu.get("cutout.views")  # both run the same views of a photo
    gpu_card = json.loads(DEFAULT_GPU_MODEL.with_suffix(".json").read_text())
    assert gpu_card["precision"] == "fp16" and gpu_card["name"] == gpu["cutout.name"] == DEFAULT_GPU_MODEL.stem
    assert gpu["cutout.version"] == gpu_card["version"] == __version__
    assert json.loads(gpu["cutout.val_metrics"])["mean_iou"] == pytest.approx(gpu_card["val_metrics"]["mean_iou"], abs=1e-9)
    assert f"{gpu_card['val_metrics']['mean_iou']:.4f}" in CARD.read_text()
