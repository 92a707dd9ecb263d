"""The HTTP API: routes, validation, limits, metrics and the model's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, File, Header, Query, Request, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from PIL import Image
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from service import __version__
from service.admission import Admission, Overloaded, TimedOut
from service.errors import ApiError, install_error_handlers
from service.imaging import FORMATS, decode_image, encode_image
from service.removal import CutoutOptions, MaskOptions, OptionError, Result, predict_probability, render_cutout, render_mask
from service.segmenter import Segmenter, open_segmenter
from service.settings import Settings
from service.telemetry import Telemetry
from service.uploads import BodyLimit, read_image_bytes

STATIC_DIR = Path(__file__).parent / "static"
RETRY_AFTER_S = "1"
IMAGE_RESPONSES = {
    200: {"content": {"image/png": {}, "image/webp": {}, "image/jpeg": {}}, "description": "The picture."},
    **{
        status: {"description": text, "content": {"application/json": {"example": {"error": {"code": code, "message": "..."}}}}}
        for status, code, text in [
            (400, "missing_file", "No file, or an empty one"),
            (401, "unauthorized", "Wrong or missing X-API-Key (only when an API key is configured)"),
            (408, "upload_timeout", "The upload arrived too slowly"),
            (413, "upload_too_large", "Too many bytes or too many pixels"),
            (415, "unsupported_image", "Not an image"),
            (422, "invalid_option", "Corrupt image or bad option values"),
            (503, "overloaded", "At capacity (Retry-After) or not ready yet"),
            (504, "timeout", "Processing took too long"),
        ]
    },
}


@dataclass
class ServiceState:
    settings: Settings
    segmenter: Segmenter | None = None
    admission: Admission | None = None
    telemetry: Telemetry = field(default_factory=Telemetry)
    ready: threading.Event = field(default_factory=threading.Event)


def warm_up(state: ServiceState) -> None:
    """One real inference so the first user does not pay for onnxruntime's lazy initialisation."""
    state.segmenter.predict(Image.new("RGB", (64, 48), (128, 128, 128)))
    state.ready.set()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    state = ServiceState(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        # Loading fails fast (bad path, CUDA asked for but absent): the process must not start half-working.
        state.segmenter = await asyncio.to_thread(
            open_segmenter,
            settings.model_path,
            settings.gpu_model,
            settings.provider,
            settings.intra_op_threads,
            settings.inter_op_threads,
        )
        state.admission = Admission(settings.concurrency, settings.queue_size, settings.request_timeout_s)
        warming = asyncio.create_task(asyncio.to_thread(warm_up, state))  # /readyz says 503 until it is done
        yield
        await warming
        state.ready.clear()

    app = FastAPI(
        title="Cutout",
        version=__version__,
        description="Background removal for photos of people. POST an image, get a transparent PNG cutout or its mask.",
        lifespan=lifespan,
    )
    app.state.cutout = state
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes, timeout_s=settings.upload_timeout_s)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=["X-Subject-BBox", "X-Model", "X-Processing-Time-Ms"],
        )
    _install_request_metrics(app, state)
    app.include_router(_image_routes(state))
    app.include_router(_ops_routes(state))
    return app


def _install_request_metrics(app: FastAPI, state: ServiceState) -> None:
    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        started = time.perf_counter()
        state.telemetry.in_flight.inc()
        try:
            response = await call_next(request)
        finally:
            state.telemetry.in_flight.dec()
        route = request.scope.get("route")
        label = route.path if route is not None else "unmatched"  # bounded label values
        state.telemetry.requests.labels(label, str(response.status_code)).inc()
        state.telemetry.latency.labels(label).observe(time.perf_counter() - started)
        return response


def _image_routes(state: ServiceState) -> APIRouter:
    settings = state.settings

    async def require_api_key(
        x_api_key: Annotated[str | None, Header(description="Needed only when CUTOUT_API_KEY is set")] = None,
    ):
        if settings.api_key and not (x_api_key and secrets.compare_digest(x_api_key, settings.api_key)):
            raise ApiError(401, "unauthorized", "Missing or wrong X-API-Key header.")

    router = APIRouter(dependencies=[Depends(require_api_key)])

    async def options_from(request: Request, model: type, query_options):
        """Options may come as query parameters or as multipart form fields (form wins)."""
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return query_options
        form = await request.form()
        fields = {k: v for k, v in form.items() if k in model.model_fields and isinstance(v, str)}
        if not fields:
            return query_options
        try:
            return model.model_validate({**query_options.model_dump(exclude_unset=True), **fields})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ApiError(422, "invalid_option", problems) from None

    async def run_limited(work):
        if not state.ready.is_set():
            raise ApiError(503, "not_ready", "The model is still loading.", {"Retry-After": RETRY_AFTER_S})
        try:
            return await state.admission.run(work)
        except Overloaded as exc:
            state.telemetry.rejected.labels("overloaded").inc()
            raise ApiError(503, "overloaded", f"Try again shortly: {exc}.", {"Retry-After": RETRY_AFTER_S}) from None
        except TimedOut as exc:
            state.telemetry.rejected.labels("timeout").inc()
            raise ApiError(504, "timeout", str(exc)) from None

    def infer(photo: Image.Image, refine: bool) -> np.ndarray:
        started = time.perf_counter()
        prob = predict_probability(state.segmenter, photo, refine)
        state.telemetry.inference.observe(time.perf_counter() - started)
        return prob

    def respond(result: Result, payload: bytes, media_type: str, started: float) -> Response:
        bbox = ",".join(map(str, result.bbox)) if result.bbox else "none"
        return Response(
            payload,
            media_type=media_type,
            headers={
                "X-Subject-BBox": bbox,
                "X-Model": state.segmenter.info.name,
                "X-Processing-Time-Ms": f"{(time.perf_counter() - started) * 1000:.1f}",
            },
        )

    @router.post(
        "/remove-background",
        responses=IMAGE_RESPONSES,
        response_class=Response,
        summary="Cut the person out: RGBA PNG (or WebP/JPEG on a background)",
    )
    async def remove_background(
        request: Request,
        options: Annotated[CutoutOptions, Query()],
        file: Annotated[UploadFile | None, File(description="The photo (or send it as a raw image/* body)")] = None,
        bg_image: Annotated[UploadFile | None, File(description="Optional background picture, scaled to cover")] = None,
    ):
        started = time.perf_counter()
        data = await read_image_bytes(request, file)
        background_data = await bg_image.read() if bg_image is not None else None
        options = await options_from(request, CutoutOptions, options)

        def work():
            photo = decode_image(data, settings.max_pixels)
            background = decode_image(background_data, settings.max_pixels) if background_data else None
            try:
                result = render_cutout(photo, infer(photo, options.refine), options, background)
            except OptionError as exc:
                raise ApiError(422, "invalid_option", str(exc)) from None
            return result, encode_image(result.image, options.format)

        result, payload = await run_limited(work)
        return respond(result, payload, FORMATS[options.format][1], started)

    @router.post(
        "/mask",
        responses=IMAGE_RESPONSES,
        response_class=Response,
        summary="The person mask: single-channel 8-bit PNG (soft probability, or binary with threshold)",
    )
    async def mask(
        request: Request,
        options: Annotated[MaskOptions, Query()],
        file: Annotated[UploadFile | None, File(description="The photo (or send it as a raw image/* body)")] = None,
    ):
        started = time.perf_counter()
        data = await read_image_bytes(request, file)
        options = await options_from(request, MaskOptions, options)

        def work():
            photo = decode_image(data, settings.max_pixels)
            result = render_mask(infer(photo, options.refine), options)
            return result, encode_image(result.image, "png")

        result, payload = await run_limited(work)
        return respond(result, payload, "image/png", started)

    return router


def _ops_routes(state: ServiceState) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz():
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: model loaded and warmed up", responses={503: {"description": "Not ready yet"}})
    async def readyz():
        if not state.ready.is_set():
            return JSONResponse({"error": {"code": "not_ready", "message": "The model is still loading."}}, status_code=503)
        return {"status": "ready"}

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics():
        return Response(generate_latest(state.telemetry.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/info", summary="Model metadata, execution providers, limits, version")
    async def info():
        settings, segmenter = state.settings, state.segmenter
        model = None
        if segmenter is not None:
            model = {
                "name": segmenter.info.name,
                "path": str(segmenter.path),
                "input_size": segmenter.info.input_size,
                "fit": segmenter.info.fit_mode,
                "metadata": segmenter.info.metadata,
            }
        return {
            "version": __version__,
            "ready": state.ready.is_set(),
            "model": model,
            "providers": segmenter.providers if segmenter else [],
            "limits": {
                "max_upload_mb": settings.max_upload_mb,
                "max_pixels": settings.max_pixels,
                "concurrency": settings.concurrency,
                "queue_size": settings.queue_size,
                "request_timeout_s": settings.request_timeout_s,
                "upload_timeout_s": settings.upload_timeout_s,
            },
            "api_key_required": bool(settings.api_key),
        }

    @router.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html")

    return router
