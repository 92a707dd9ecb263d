"""The FastAPI application: the model's lifespan, middleware, and the routers (see service/routes)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from PIL import Image

from service import __version__
from service.admission import Admission, RefuseWhenFull
from service.dependencies import ServiceState
from service.errors import install_error_handlers
from service.routes import images, ops
from service.segmenter import open_segmenter_from
from service.settings import Settings
from service.uploads import BodyLimit


def warm_up(state: ServiceState) -> None:
    """One real inference so the first user does not pay for onnxruntime's lazy initialisation."""
    state.segmenter.predict_small(Image.new("RGB", (64, 48), (128, 128, 128)))
    state.ready.set()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    state = ServiceState(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        # Loading fails fast (bad path, CUDA asked for but absent): the process must not start half-working.
        state.segmenter = await asyncio.to_thread(open_segmenter_from, settings)
        state.admission = Admission(
            settings.concurrency, settings.queue_size, settings.request_timeout_s, settings.memory_budget_mb
        )
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
    # Added after BodyLimit, so it runs first: a full server refuses before anything reads the upload.
    app.add_middleware(
        RefuseWhenFull,
        admission=lambda: state.admission if state.ready.is_set() else None,
        paths=images.IMAGE_ROUTES,
        on_refusal=lambda: state.telemetry.rejected.labels("overloaded").inc(),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=images.RESULT_HEADERS,
        )
    _install_request_metrics(app, state)
    app.include_router(images.router)
    app.include_router(ops.router)
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
