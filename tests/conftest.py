"""Shared fixtures: generated datasets, a small model trained and exported by the project's own code,
and real photos. Everything heavy is built once per session."""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
REAL_DATA = SHARED / "data" / "people_segmentation"
BACKBONE = SHARED / "weights" / "resnet50_imagenet_notop.h5"
PHOTOS = Path(__file__).parent / "data" / "photos"  # a few real photos with their masks, shipped with the tests
SHIPPED_MODEL = ROOT / "models" / "cutout-person.onnx"
TINY_SIZE = 64
TINY_EPOCHS = 3

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# Without VNNI, x86 sums two uint8 x int8 products in int16: 2 * 255 * 64 still fits, 2 * 255 * 127 does not.
INT8_WEIGHT_LIMIT = 64


def int8_weight_range(model: Path) -> tuple[int, int]:
    """Smallest and largest stored int8 weight of a quantized ONNX file (needs the onnx package)."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(model))
    weights = [numpy_helper.to_array(t) for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    weights = [w for w in weights if w.any()]  # weight zero points are all 0
    return min(int(w.min()) for w in weights), max(int(w.max()) for w in weights)


def shapes_on_noise(rng: np.random.Generator, width: int, height: int) -> tuple[Image.Image, np.ndarray]:
    """A noisy photo with one bright ellipse or rectangle: the mask is the shape (easy to learn)."""
    noise = rng.integers(0, 90, size=(height, width, 3), dtype=np.uint8)
    image = Image.fromarray(noise)
    mask = Image.new("L", (width, height), 0)
    box = sorted(rng.integers(0, width, 2)), sorted(rng.integers(0, height, 2))
    xy = [box[0][0], box[1][0], max(box[0][1], box[0][0] + 8), max(box[1][1], box[1][0] + 8)]
    colour = tuple(int(c) for c in rng.integers(170, 255, 3))
    draw_image, draw_mask = ImageDraw.Draw(image), ImageDraw.Draw(mask)
    if rng.random() < 0.5:
        draw_image.ellipse(xy, fill=colour)
        draw_mask.ellipse(xy, fill=1)
    else:
        draw_image.rectangle(xy, fill=colour)
        draw_mask.rectangle(xy, fill=1)
    return image, np.asarray(mask)


def make_dataset(root: Path, count: int = 24, layout: str = "kaggle", mask_scale: int = 1, seed: int = 0, size=(72, 56)) -> Path:
    """Write a dataset of shapes on noise. layout: 'kaggle' (with split files) or 'folders'."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    stems = []
    for i in range(count):
        image, mask = shapes_on_noise(rng, *size)
        stem = f"sample-{i:03d}"
        image.save(root / "images" / f"{stem}.jpg", quality=95)
        Image.fromarray((mask * mask_scale).astype(np.uint8)).save(root / "masks" / f"{stem}.png")
        stems.append(stem)
    if layout == "kaggle":
        (root / "segmentation").mkdir(exist_ok=True)
        n_val = max(2, count // 4)
        (root / "segmentation" / "train.txt").write_text("\n".join(stems[n_val:]) + "\n")
        (root / "segmentation" / "val.txt").write_text("\n".join(stems[:n_val]) + "\n")
    return root


def kaggle_layout(root: Path, pictures: dict[str, tuple[Image.Image, np.ndarray]]) -> Path:
    """A dataset in the Kaggle layout from named (photo, 0/1 mask) pairs; all train, the first also val."""
    for folder in ("images", "masks", "segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for stem, (picture, mask) in pictures.items():
        picture.save(root / "images" / f"{stem}.jpg", quality=95)
        Image.fromarray(mask.astype(np.uint8)).save(root / "masks" / f"{stem}.png")
    (root / "segmentation" / "train.txt").write_text("\n".join(pictures) + "\n")
    (root / "segmentation" / "val.txt").write_text(next(iter(pictures)) + "\n")
    return root


def built_once(tmp_path_factory, name: str, build: Callable[[Path], Path]) -> Path:
    """What build(folder) makes, once per test session. Under pytest-xdist (`make test` runs two workers)
    each worker has its own session fixtures: the first to get here builds in the folder the workers
    share, the other waits for the lock and reuses it, so the tiny model is trained once, not twice."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return build(tmp_path_factory.mktemp(name))
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent  # this session's, above every worker's own folder
    record = shared / f"{name}.path"
    with FileLock(shared / f"{name}.lock"):
        if not record.exists():  # a worker whose build failed wrote no record: this one builds afresh
            record.write_text(str(build(Path(tempfile.mkdtemp(prefix=name, dir=shared)))))
        return Path(record.read_text())


@pytest.fixture(scope="session")
def shapes_dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("shapes"), count=32)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, shapes_dataset) -> Path:
    """A real (short) training run of the real architecture at 64 px, from scratch, with the release recipe's
    loss and schedule (Dice, warmup + cosine)."""
    from training.fit import fit

    def train(folder: Path) -> Path:
        recipe = dict(loss="bce_dice", lr_schedule="cosine", warmup_steps=4)
        fit(tiny_config(shapes_dataset, folder / "tiny", epochs=TINY_EPOCHS, steps_per_epoch=8, **recipe))
        return folder / "tiny"

    return built_once(tmp_path_factory, "tiny_run", train)


def tiny_config(data: Path, out: Path, **overrides):
    """Training options for fast runs on the shapes dataset: 64 px, no pretrained weights, a high rate."""
    from training.fit import FitConfig

    options = dict(size=TINY_SIZE, batch_size=4, epochs=2, steps_per_epoch=6, backbone_weights="none", lr=1e-3)
    return FitConfig(data=str(data), out=str(out), **{**options, **overrides})


@pytest.fixture
def eager_keras_steps():
    """Keras runs the test's training steps eagerly. For the few steps these tests take, tracing ResNet-50 into a
    graph costs more than the steps themselves, and what they check (where the weights start, resuming, that two
    replicas train) does not hang on the step being a graph. The traced path stays tested: the tiny run and the
    aspect-view shapes test train in graphs."""
    import tensorflow as tf

    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(False)


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory, tiny_run) -> Path:
    """The tiny run exported by the project's export code (fp32, with parity check and metadata)."""
    from training.export import export

    def export_fp32(folder: Path) -> Path:
        export(tiny_run, folder / "tiny.onnx")
        return folder / "tiny.onnx"

    return built_once(tmp_path_factory, "tiny_onnx", export_fp32)


@pytest.fixture(scope="session")
def served_model(request) -> Path:
    """The model the service tests run: the shipped one when present (it needs no TensorFlow)."""
    if SHIPPED_MODEL.exists():
        return SHIPPED_MODEL
    pytest.importorskip("tensorflow", reason="no shipped model and no TensorFlow to export a test model")
    return request.getfixturevalue("tiny_onnx")


@pytest.fixture(scope="session")
def live_server(served_model):
    """The real app under uvicorn on a loopback port, in a thread; yields its base URL."""
    import threading

    import uvicorn

    from scripts.loadgen import free_port, wait_until_ready
    from service.app import create_app
    from service.settings import Settings

    port = free_port()
    app = create_app(Settings(model_path=served_model, provider="cpu", max_upload_mb=2))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(url, 60, alive=thread.is_alive)
    yield url
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    files = sorted(PHOTOS.glob("*.jpg"))
    assert files, f"test photos missing from {PHOTOS}"
    return files


def photo_mask(photo: Path) -> np.ndarray:
    return np.asarray(Image.open(photo.with_suffix(".png")), dtype=np.float32)


# ---- the HTTP app with the served model, in-process -------------------------------------------------
def wait_ready(client, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "service never became ready"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def client(served_model):
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings(model_path=served_model, provider="cpu", max_upload_mb=2, max_pixels=30_000_000))
    with TestClient(app) as test_client:
        wait_ready(test_client)
        yield test_client


def upload(path_or_bytes, name="photo.jpg", content_type="image/jpeg"):
    data = path_or_bytes.read_bytes() if hasattr(path_or_bytes, "read_bytes") else path_or_bytes
    return {"file": (name, data, content_type)}


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == code and body["error"]["message"]


def png(response) -> Image.Image:
    assert response.status_code == 200, response.text
    return Image.open(io.BytesIO(response.content))
