"""The real HTTP app with a real ONNX model and real photos: every route, option and error."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from service.errors import CATALOGUE, readme_table
from service.settings import Settings
from tests.conftest import ROOT, assert_error, png, upload, wait_ready
from tests.corpus.generate import BAD, GOOD, exif_rotated


# ---- happy paths -------------------------------------------------------------------------------------
def test_remove_background_returns_rgba_png_at_input_size(client, photos):
    photo = Image.open(photos[0])
    response = client.post("/remove-background", files=upload(photos[0]))
    image = png(response)
    assert response.headers["content-type"] == "image/png"
    assert image.mode == "RGBA" and image.size == photo.size
    assert response.headers["X-Model"] and float(response.headers["X-Processing-Time-Ms"]) > 0
    left, top, right, bottom = map(int, response.headers["X-Subject-BBox"].split(","))
    rows, cols = np.nonzero(np.asarray(image)[..., 3] >= 128)
    assert (left, top, right, bottom) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)


def test_mask_is_single_channel_at_input_size(client, photos):
    photo = Image.open(photos[1])
    soft = png(client.post("/mask", files=upload(photos[1])))
    hard = png(client.post("/mask", params={"threshold": 0.5}, files=upload(photos[1])))
    assert soft.mode == "L" and soft.size == photo.size
    assert set(np.unique(np.asarray(hard))) <= {0, 255}


def test_raw_image_body_is_accepted(client, photos):
    response = client.post("/mask", content=photos[0].read_bytes(), headers={"content-type": "image/jpeg"})
    assert png(response).size == Image.open(photos[0]).size


def test_options_as_form_fields(client, photos):
    response = client.post("/remove-background", files=upload(photos[0]), data={"format": "webp", "max_size": "100"})
    assert response.headers["content-type"] == "image/webp"
    assert max(Image.open(io.BytesIO(response.content)).size) == 100


def test_background_colour_and_jpeg(client, photos):
    response = client.post("/remove-background", params={"bg_color": "#00ff00", "format": "jpeg"}, files=upload(photos[0]))
    assert response.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    assert image.mode == "RGB" and image.size == Image.open(photos[0]).size


def test_background_image(client, photos):
    background = io.BytesIO()
    Image.new("RGB", (50, 50), (0, 0, 255)).save(background, "PNG")
    files = {**upload(photos[0]), "bg_image": ("bg.png", background.getvalue(), "image/png")}
    image = png(client.post("/remove-background", files=files))
    assert image.mode == "RGBA" and np.asarray(image)[..., 3].min() == 255  # opaque everywhere


def test_crop_and_threshold(client, photos):
    full = client.post("/remove-background", params={"threshold": 0.5}, files=upload(photos[0]))
    bbox = full.headers["X-Subject-BBox"]
    cropped = client.post(
        "/remove-background", params={"threshold": 0.5, "crop": True, "crop_margin": 0}, files=upload(photos[0])
    )
    image = png(cropped)
    left, top, right, bottom = map(int, bbox.split(","))  # the photo shows a person: there is a box
    assert (
        image.size == (right - left, bottom - top) and cropped.headers["X-Subject-BBox"] == f"0,0,{right - left},{bottom - top}"
    )
    assert set(np.unique(np.asarray(png(full))[..., 3])) <= {0, 255}


def test_refine_off_differs_from_default(client, photos):
    refined = np.asarray(png(client.post("/mask", files=upload(photos[2]))), dtype=np.int16)
    raw = np.asarray(png(client.post("/mask", params={"refine": False}, files=upload(photos[2]))), dtype=np.int16)
    if raw.min() == raw.max():
        pytest.skip("this model predicts a constant mask: refinement has no edge to move")
    assert refined.shape == raw.shape and np.abs(refined - raw).max() > 0


def test_exif_orientation_is_applied(client):
    image = png(client.post("/mask", files=upload(exif_rotated())))
    assert image.size == (40, 60)


@pytest.mark.parametrize("name,data,content_type,size", GOOD, ids=[g[0] for g in GOOD])
def test_unusual_images_work(client, name, data, content_type, size):
    image = png(client.post("/remove-background", files=upload(data, name, content_type)))
    assert image.size == size


# ---- errors --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,data,content_type,status,code", BAD, ids=[b[0] for b in BAD])
def test_bad_uploads_get_their_documented_error(client, name, data, content_type, status, code):
    assert_error(client.post("/remove-background", files=upload(data, name, content_type)), status, code)
    assert client.get("/readyz").status_code == 200


def test_missing_file_and_wrong_field(client, photos):
    assert_error(client.post("/mask"), 400, "missing_file")
    response = client.post("/mask", files={"image": ("p.jpg", photos[0].read_bytes(), "image/jpeg")})
    assert_error(response, 400, "missing_file")
    assert "'file'" in response.json()["error"]["message"]


def test_wrong_content_type(client):
    assert_error(
        client.post("/mask", content=b'{"a": 1}', headers={"content-type": "application/json"}), 415, "unsupported_media_type"
    )


@pytest.mark.parametrize(
    "params",
    [
        {"threshold": 2},
        {"threshold": "x"},
        {"bg_color": "green"},
        {"format": "gif"},
        {"max_size": 0},
        {"crop_margin": -3},
        {"format": "jpeg"},
    ],
)
def test_bad_options_are_422(client, photos, params):
    assert_error(client.post("/remove-background", params=params, files=upload(photos[0])), 422, "invalid_option")


def test_bad_form_option_is_422(client, photos):
    assert_error(client.post("/remove-background", files=upload(photos[0]), data={"threshold": "7"}), 422, "invalid_option")


def test_body_over_the_limit_is_413(client):
    big = b"\xff\xd8" + b"\x00" * (3 * 1024 * 1024)
    assert_error(client.post("/mask", files=upload(big)), 413, "upload_too_large")
    assert_error(client.post("/mask", content=big, headers={"content-type": "image/jpeg"}), 413, "upload_too_large")


def test_streamed_body_over_the_limit_is_413_without_content_length(client):
    def chunks():
        for _ in range(40):
            yield b"\x00" * (128 * 1024)

    response = client.post("/mask", content=chunks(), headers={"content-type": "image/jpeg"})
    assert_error(response, 413, "upload_too_large")


def test_unknown_route_is_json_404(client):
    assert_error(client.get("/nope"), 404, "not_found")


# ---- operations ------------------------------------------------------------------------------------
def test_health_info_and_docs(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/info").json()
    assert info["ready"] and info["model"]["input_size"] > 0 and info["providers"] == ["CPUExecutionProvider"]
    assert info["limits"]["max_upload_mb"] == 2 and info["limits"]["memory_budget_mb"] > 0
    assert info["model"]["file"] == "cutout-person.onnx" and "/" not in json.dumps(info["model"]["file"])
    assert info["model"]["views"][0] == "square" and set(info["model"]["views"]) <= {"square", "mirrored-aspect"}
    assert str(ROOT) not in json.dumps(info)  # nothing about the server's disk
    assert {"subject", "confidence", "on_empty", "decontaminate"} <= set(info["features"])
    assert info["options"]["subject"] == "people" and info["options"]["decontaminate"] is True
    schema = client.get("/openapi.json").json()
    params = {p["name"] for p in schema["paths"]["/remove-background"]["post"]["parameters"]}
    assert {"format", "bg_color", "crop", "crop_margin", "max_size", "threshold", "refine", "subject", "on_empty"} <= params
    responses = schema["paths"]["/mask"]["post"]["responses"]
    for code, kind in CATALOGUE.items():  # every error a route can send is documented, from the one catalogue
        assert f"`{code}`" in responses[str(kind.status)]["description"], code
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "remove-background" in page.text


def test_readme_error_table_is_the_catalogue():
    assert readme_table() in (ROOT / "README.md").read_text()


def test_metrics_move(client, photos):
    def count(text: str, needle: str) -> float:
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(needle))

    before = client.get("/metrics").text
    client.post("/mask", files=upload(photos[0]))
    client.post("/mask")
    after = client.get("/metrics").text
    ok = 'cutout_requests_total{route="/mask",status="200"}'
    bad = 'cutout_requests_total{route="/mask",status="400"}'
    assert count(after, ok) == count(before, ok) + 1
    assert count(after, bad) == count(before, bad) + 1
    assert count(after, "cutout_inference_seconds_count") > count(before, "cutout_inference_seconds_count")
    assert "cutout_in_flight_requests" in after and "cutout_request_seconds_bucket" in after


def test_readiness_before_and_after_warm_up(served_model):
    app = create_app(Settings(model_path=served_model, provider="cpu"))
    cold = TestClient(app)  # no lifespan yet: the model is not loaded
    assert cold.get("/healthz").status_code == 200
    assert_error(cold.get("/readyz"), 503, "not_ready")
    assert_error(cold.post("/mask", content=b"x", headers={"content-type": "image/png"}), 503, "not_ready")
    with TestClient(app) as warm:
        wait_ready(warm)
        assert warm.get("/readyz").json() == {"status": "ready"}


def test_api_key(served_model, photos):
    app = create_app(Settings(model_path=served_model, provider="cpu", api_key="s3cret"))
    with TestClient(app) as keyed:
        wait_ready(keyed)
        assert_error(keyed.post("/mask", files=upload(photos[0])), 401, "unauthorized")
        assert_error(keyed.post("/mask", files=upload(photos[0]), headers={"X-API-Key": "wrong"}), 401, "unauthorized")
        assert keyed.post("/mask", files=upload(photos[0]), headers={"X-API-Key": "s3cret"}).status_code == 200
        assert keyed.get("/healthz").status_code == 200  # probes need no key


def test_cuda_without_gpu_fails_at_start(served_model):
    from service.segmenter import ModelLoadError

    app = create_app(Settings(model_path=served_model, provider="cuda"))
    with pytest.raises(ModelLoadError, match="cuda"):
        with TestClient(app):
            pass


def test_missing_model_fails_at_start(tmp_path):
    from service.segmenter import ModelLoadError

    with pytest.raises(ModelLoadError, match="not found"):
        with TestClient(create_app(Settings(model_path=tmp_path / "none.onnx"))):
            pass


def test_python_api(served_model, photos):
    from service import Segmenter, mask, remove_background

    segmenter = Segmenter(served_model, provider="cpu")
    photo = Image.open(photos[0])
    cutout = remove_background(segmenter, photo, bg_color="#ffffff")
    assert cutout.size == photo.size and np.asarray(cutout)[..., 3].min() == 255
    binary = mask(segmenter, photo, threshold=0.5)
    assert binary.mode == "L" and set(np.unique(np.asarray(binary))) <= {0, 255}


def test_batch_command_processes_a_folder(served_model, photos, tmp_path):
    import shutil
    import subprocess
    import sys

    from tests.conftest import ROOT

    inputs = tmp_path / "in"
    inputs.mkdir()
    for photo in photos[:2]:
        shutil.copy(photo, inputs)
    (inputs / "broken.jpg").write_bytes(b"not an image")
    command = [sys.executable, "-m", "service", "remove", str(inputs), str(tmp_path / "out"), "--model", str(served_model)]
    result = subprocess.run([*command, "--max-size", "200"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 1  # one input failed, and the command says so
    assert "2 written" in result.stdout and "1 failed" in result.stdout and "broken.jpg" in result.stdout + result.stderr
    outputs = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in outputs] == sorted(p.stem + ".png" for p in photos[:2])
    assert all(Image.open(p).mode == "RGBA" and max(Image.open(p).size) == 200 for p in outputs)
