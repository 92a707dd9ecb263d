"""Service settings, read from the environment with the CUTOUT_ prefix (see README, "Configuration")."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL = MODELS_DIR / "cutout-person.onnx"
DEFAULT_GPU_MODEL = MODELS_DIR / "cutout-person-fp16.onnx"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CUTOUT_", env_file=None, protected_namespaces=())

    model_path: Path = Field(DEFAULT_MODEL, description="ONNX model to serve (default: the shipped model)")
    gpu_model_path: Path = Field(
        DEFAULT_GPU_MODEL, description="ONNX model served instead when onnxruntime runs on CUDA (if the file exists)"
    )
    provider: Literal["auto", "cpu", "cuda"] = Field("auto", description="onnxruntime execution provider")
    intra_op_threads: int = Field(0, ge=0, description="threads per inference (0: one per core)")
    inter_op_threads: int = Field(1, ge=1, description="onnxruntime inter-op threads")
    max_upload_mb: float = Field(20.0, gt=0, description="largest accepted request body, in MB")
    max_pixels: int = Field(25_000_000, gt=0, description="largest accepted image, in pixels (decompression-bomb guard)")
    concurrency: int = Field(2, ge=1, description="images processed at the same time")
    queue_size: int = Field(8, ge=0, description="requests allowed to wait for a slot; beyond that: 503 at once")
    memory_budget_mb: float = Field(
        1100.0,
        gt=0,
        description="memory the images in work may take together, by their pixels (see README, 'Large photos')",
    )
    request_timeout_s: float = Field(30.0, gt=0, description="longest wait for a slot plus processing, else 503/504")
    upload_timeout_s: float = Field(30.0, gt=0, description="longest time a client may take to send its upload (else 408)")
    cors_origins: list[str] = Field(default_factory=list, description="origins allowed by CORS (JSON list)")
    api_key: str | None = Field(None, description="when set, every image route needs the X-API-Key header")

    @property
    def gpu_model(self) -> Path | None:
        """The CUDA file, unless the operator chose a model of their own and no GPU file to go with it."""
        if "model_path" in self.model_fields_set and "gpu_model_path" not in self.model_fields_set:
            return None
        return self.gpu_model_path

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
