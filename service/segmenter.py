"""The onnxruntime session for one exported model: providers, threads, and the model's own metadata.

The ONNX file is self-describing (see training/export.py): input size, fit rule and padding come from its
metadata_props, so nothing about the model is duplicated by hand here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from service.fitting import PAD_RGB, Placement, aspect_area_shape, fit_image, mirrored_view, unfit_probability

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
# What the model is run on for each photo, averaged (the file's "cutout.views"; without it, the square alone):
SQUARE = "square"  # the photo fitted to the model's square input (its "cutout.fit" rule)
MIRRORED_ASPECT = "mirrored-aspect"  # the photo mirrored at its own aspect ratio, about as many pixels as the square
VIEWS = (SQUARE, MIRRORED_ASPECT)
# How a file with both views is run, as its "cutout.tta" metadata tells readers of the file.
TWO_VIEWS_DESCRIPTION = (
    f"the service averages the log-odds of the square and of the photo mirrored at its aspect ratio ({SQUARE},{MIRRORED_ASPECT})"
)
# Keeps the views' log-odds finite where a view is certain (a probability of exactly 0 or 1).
SURE = 1e-4


def average_log_odds(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Two views' probability maps (one shape) -> the probability of their mean log-odds.

    Where one view is sure and the other unsure, the sure one decides; the plain mean of probabilities lets the
    unsure one pull a clear pixel to the cut. On dev val this scores higher than the plain mean with the same
    views (models/README.md, "Log-odds")."""
    first, second = (np.clip(p.astype(np.float32), SURE, 1 - SURE) for p in (first, second))
    person, background = np.sqrt(first * second), np.sqrt((1 - first) * (1 - second))
    return person / (person + background)


class ModelLoadError(RuntimeError):
    """The model file or the requested execution provider cannot be used."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    input_name: str
    output_name: str
    input_size: int
    fit_mode: str
    pad_rgb: tuple[int, int, int]
    views: tuple[str, ...] = (SQUARE,)
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_session(cls, session: ort.InferenceSession, path: Path) -> ModelInfo:
        meta = dict(session.get_modelmeta().custom_metadata_map)
        missing = [k for k in ("cutout.input_size", "cutout.fit") if k not in meta]
        if missing:
            raise ModelLoadError(
                f"{path} lacks the metadata the service needs: {', '.join(missing)} (export it with `python -m training export`)"
            )
        pad = tuple(int(v) for v in meta.get("cutout.pad_rgb", ",".join(map(str, PAD_RGB))).split(","))
        views = tuple(meta.get("cutout.views", SQUARE).split(","))
        if SQUARE not in views or not set(views) <= set(VIEWS):
            raise ModelLoadError(f"{path}: unknown cutout.views {','.join(views)!r}; this service runs {', '.join(VIEWS)}")
        height, width = session.get_inputs()[0].shape[1:3]
        if MIRRORED_ASPECT in views and (isinstance(height, int) or isinstance(width, int)):
            raise ModelLoadError(f"{path} asks for a {MIRRORED_ASPECT} view but its input has a fixed shape")
        return cls(
            name=meta.get("cutout.name", path.stem),
            input_name=session.get_inputs()[0].name,
            output_name=session.get_outputs()[0].name,
            input_size=int(meta["cutout.input_size"]),
            fit_mode=meta["cutout.fit"],
            pad_rgb=pad,  # type: ignore[arg-type]
            views=views,
            metadata=meta,
        )

    def metadata_json(self, key: str) -> dict:
        return json.loads(self.metadata.get(key, "{}"))


def choose_providers(provider: str) -> list[str]:
    """auto: CUDA when this onnxruntime build has it, else CPU. cuda: CUDA or a clear failure, never a silent CPU."""
    available = ort.get_available_providers()
    if provider == "cpu":
        return [PROVIDERS["cpu"]]
    if provider == "cuda":
        if PROVIDERS["cuda"] not in available:
            raise ModelLoadError(
                "CUTOUT_PROVIDER=cuda but this onnxruntime has no CUDA provider "
                f"(available: {', '.join(available)}); install onnxruntime-gpu or use CUTOUT_PROVIDER=cpu|auto"
            )
        return [PROVIDERS["cuda"]]
    if provider == "auto":
        return [p for p in (PROVIDERS["cuda"], PROVIDERS["cpu"]) if p in available]
    raise ModelLoadError(f"unknown provider {provider!r}; expected auto, cpu or cuda")


class Segmenter:
    """Runs the person-segmentation model on PIL images; returns probability maps at the image's size."""

    def __init__(self, model_path: str | Path, provider: str = "auto", intra_op_threads: int = 0, inter_op_threads: int = 1):
        self.path = Path(model_path)
        if not self.path.is_file():
            raise ModelLoadError(f"model file not found: {self.path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads  # 0: one per core
        options.inter_op_num_threads = inter_op_threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        wanted = choose_providers(provider)
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelLoadError(f"could not load {self.path}: {exc}") from exc
        if provider == "cuda" and self.session.get_providers()[0] != PROVIDERS["cuda"]:
            raise ModelLoadError("CUTOUT_PROVIDER=cuda but no usable GPU was found (onnxruntime fell back to CPU)")
        self.info = ModelInfo.from_session(self.session, self.path)

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def predict_model_size(self, batch: np.ndarray) -> np.ndarray:
        """NHWC float32 RGB 0..255 at an input shape the model takes -> N x H x W probabilities."""
        (output,) = self.session.run([self.info.output_name], {self.info.input_name: batch.astype(np.float32)})
        return output[..., 0]

    def predict_small(self, image: Image.Image) -> np.ndarray:
        """RGB image -> float32 person probability of the photo's area, at the model's resolution."""
        prob = self.predict_square(image)
        if MIRRORED_ASPECT in self.info.views:
            prob = average_log_odds(prob, self.predict_mirrored_aspect(image, prob.shape[1], prob.shape[0]))
        return prob

    def predict_square(self, image: Image.Image) -> np.ndarray:
        """The person probability of the photo fitted to the model's square, cut back to the photo's area."""
        fitted, placement = fit_image(image, self.info.input_size, self.info.fit_mode, self.info.pad_rgb)
        prob = self.predict_model_size(fitted[None])[0]
        return np.ascontiguousarray(
            prob[placement.top : placement.top + placement.height, placement.left : placement.left + placement.width]
        )

    def predict_mirrored_aspect(self, image: Image.Image, width: int, height: int) -> np.ndarray:
        """The person probability of the photo run mirrored at its own aspect ratio, as a width x height map.

        A second look whose mistakes the square's rarely shares: the square squeezes the photo, and the mirror
        turns it; combined with the square it scores higher on dev val than the square mirror pair at the same
        cost (models/README.md, "Views")."""
        view_height, view_width = aspect_area_shape(image.width, image.height, self.info.input_size)
        view = mirrored_view(image, view_height, view_width)
        prob = self.predict_model_size(view[None])[0][:, ::-1]
        return unfit_probability(prob, Placement(0, 0, view_width, view_height), width, height)

    def predict(self, image: Image.Image) -> np.ndarray:
        """RGB image -> float32 person probability (H x W, 0..1) at the image's own size."""
        small = self.predict_small(image)
        return unfit_probability(small, Placement(0, 0, small.shape[1], small.shape[0]), image.width, image.height)


def open_segmenter(
    cpu_model: str | Path,
    gpu_model: str | Path | None = None,
    provider: str = "auto",
    intra_op_threads: int = 0,
    inter_op_threads: int = 1,
) -> Segmenter:
    """The segmenter for this machine: `gpu_model` (fp16) when it exists and CUDA really runs it, else `cpu_model`.

    The int8 CPU file would run on CUDA too, but slowly (QDQ falls back to float kernels), hence two files.
    """
    if provider != "cpu" and gpu_model and Path(gpu_model).is_file() and PROVIDERS["cuda"] in ort.get_available_providers():
        segmenter = Segmenter(gpu_model, provider, intra_op_threads, inter_op_threads)
        if segmenter.providers[0] == PROVIDERS["cuda"]:
            return segmenter
    return Segmenter(cpu_model, provider, intra_op_threads, inter_op_threads)


def open_segmenter_from(settings) -> Segmenter:
    """The one place that opens the configured segmenter (service.settings.Settings) for the app and the batch command."""
    return open_segmenter(
        settings.model_path, settings.gpu_model, settings.provider, settings.intra_op_threads, settings.inter_op_threads
    )
