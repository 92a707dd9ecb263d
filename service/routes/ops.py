"""Probes, metrics, information and the web page: what operators and browsers GET."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service import __version__
from service.dependencies import State
from service.removal import CutoutOptions

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter()


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz():
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: model loaded and warmed up", responses={503: {"description": "Not ready yet"}})
async def readyz(state: State):
    if not state.ready.is_set():
        return JSONResponse({"error": {"code": "not_ready", "message": "The model is still loading."}}, status_code=503)
    return {"status": "ready"}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(state: State):
    return Response(generate_latest(state.telemetry.registry), media_type=CONTENT_TYPE_LATEST)


def _model_info(state) -> dict | None:
    segmenter = state.segmenter
    if segmenter is None:
        return None
    return {
        "name": segmenter.info.name,
        "file": segmenter.path.name,  # never the absolute path: it tells clients about the server's disk
        "input_size": segmenter.info.input_size,
        "fit": segmenter.info.fit_mode,
        "views": list(segmenter.info.views),
        "metadata": segmenter.info.metadata,
    }


@router.get("/info", summary="Model metadata, execution providers, options, limits, version")
async def info(state: State):
    settings = state.settings
    return {
        "version": __version__,
        "ready": state.ready.is_set(),
        "model": _model_info(state),
        "providers": state.segmenter.providers if state.segmenter else [],
        "options": {name: field.default for name, field in CutoutOptions.model_fields.items()},
        "features": ["subject", "confidence", "on_empty", "decontaminate", "zoom", "crop", "bg_color", "bg_image", "formats"],
        "limits": {
            "max_upload_mb": settings.max_upload_mb,
            "max_pixels": settings.max_pixels,
            "concurrency": settings.concurrency,
            "queue_size": settings.queue_size,
            "memory_budget_mb": settings.memory_budget_mb,
            "request_timeout_s": settings.request_timeout_s,
            "upload_timeout_s": settings.upload_timeout_s,
        },
        "api_key_required": bool(settings.api_key),
    }


@router.get("/", include_in_schema=False)
async def index():
    return FileResponse(STATIC_DIR / "index.html")
