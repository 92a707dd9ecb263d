"""Which file the service serves: the int8 CPU model, or the fp16 one when onnxruntime really runs on CUDA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from service import segmenter as segmenter_module
from service.segmenter import ModelLoadError, open_segmenter
from service.settings import DEFAULT_GPU_MODEL, DEFAULT_MODEL, Settings
from tests.conftest import TINY_SIZE, built_once


@pytest.fixture(scope="module")
def fp16_onnx(tmp_path_factory, tiny_run) -> Path:
    pytest.importorskip("tensorflow", reason="exporting needs the [train] extra")
    from training.export import export

    def export_fp16(folder: Path) -> Path:
        export(tiny_run, folder / "tiny-fp16.onnx", precision="fp16")
        return folder / "tiny-fp16.onnx"

    return built_once(tmp_path_factory, "fp16_onnx", export_fp16)


def test_fp16_file_keeps_float32_io_halves_the_bytes_and_agrees_with_fp32(fp16_onnx, tiny_onnx):
    fp16 = ort.InferenceSession(str(fp16_onnx), providers=["CPUExecutionProvider"])
    fp32 = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    assert fp16.get_inputs()[0].type == fp16.get_outputs()[0].type == "tensor(float)"
    assert fp16_onnx.stat().st_size < 0.6 * tiny_onnx.stat().st_size
    image = np.random.default_rng(5).uniform(0, 255, (2, TINY_SIZE, TINY_SIZE, 3)).astype(np.float32)
    difference = np.abs(fp16.run(None, {"image": image})[0] - fp32.run(None, {"image": image})[0])
    # Noise photos through a barely trained model sit near p = 0.5, where the sigmoid is steepest: fp16's
    # rounding of the logits shows most there. On average it stays far below what a mask would show.
    assert difference.mean() < 5e-3 and difference.max() < 6e-2, (difference.mean(), difference.max())
    assert fp16.get_modelmeta().custom_metadata_map["cutout.precision"] == "fp16"


def test_without_cuda_the_cpu_file_is_served_even_when_a_gpu_file_exists(fp16_onnx, tiny_onnx):
    for provider in ("auto", "cpu"):
        segmenter = open_segmenter(tiny_onnx, fp16_onnx, provider)
        assert segmenter.path == tiny_onnx and segmenter.providers == ["CPUExecutionProvider"]


# onnxruntime warns when asked for the listed CUDA provider it cannot run: that is the case under test.
@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider' is not in available provider names")
def test_a_cuda_provider_that_cannot_run_falls_back_to_the_cpu_file(fp16_onnx, tiny_onnx, monkeypatch):
    # An onnxruntime-gpu build on a machine without a usable GPU lists CUDA but runs on CPU.
    listed = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(segmenter_module.ort, "get_available_providers", lambda: listed)
    if "CUDAExecutionProvider" in ort.get_all_providers() and ort.get_device() == "GPU":
        pytest.skip("a real GPU is present: the fp16 file would rightly be served")
    segmenter = open_segmenter(tiny_onnx, fp16_onnx, "auto")
    assert segmenter.path == tiny_onnx and segmenter.providers[0] == "CPUExecutionProvider"
    with pytest.raises(ModelLoadError, match="no usable GPU"):
        open_segmenter(tiny_onnx, fp16_onnx, "cuda")


def test_a_missing_gpu_file_is_not_an_error(tiny_onnx, tmp_path):
    assert open_segmenter(tiny_onnx, tmp_path / "absent.onnx", "auto").path == tiny_onnx


def test_an_operators_own_model_is_not_swapped_for_the_shipped_gpu_file(monkeypatch, tmp_path):
    assert Settings().model_path == DEFAULT_MODEL and Settings().gpu_model == DEFAULT_GPU_MODEL
    monkeypatch.setenv("CUTOUT_MODEL_PATH", str(tmp_path / "mine.onnx"))
    assert Settings().gpu_model is None
    monkeypatch.setenv("CUTOUT_GPU_MODEL_PATH", str(tmp_path / "mine-fp16.onnx"))
    assert Settings().gpu_model == tmp_path / "mine-fp16.onnx"
