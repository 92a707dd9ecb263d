"""What routes depend on, in one place: the service's state, the API key, options, and admission."""

# No "from __future__ import annotations": FastAPI must see the option models in the closures below.
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Query, Request
from pydantic import BaseModel, ValidationError

from service.admission import Admission, Overloaded, TimedOut
from service.errors import ApiError, retry_later
from service.removal import CutoutOptions, MaskOptions
from service.segmenter import Segmenter
from service.settings import Settings
from service.telemetry import Telemetry

T = TypeVar("T")
Options = TypeVar("Options", bound=BaseModel)


@dataclass
class ServiceState:
    """Everything one app instance owns; made by the lifespan, handed to routes by `get_state`."""

    settings: Settings
    segmenter: Segmenter | None = None
    admission: Admission | None = None
    telemetry: Telemetry = field(default_factory=Telemetry)
    ready: threading.Event = field(default_factory=threading.Event)


def get_state(request: Request) -> ServiceState:
    return request.app.state.cutout


State = Annotated[ServiceState, Depends(get_state)]


async def require_api_key(
    state: State,
    x_api_key: Annotated[str | None, Header(description="Needed only when CUTOUT_API_KEY is set")] = None,
) -> None:
    expected = state.settings.api_key
    if expected and not (x_api_key and secrets.compare_digest(x_api_key, expected)):
        raise ApiError("unauthorized", "Missing or wrong X-API-Key header.")


def _merged_with_form(model: type[Options]) -> Callable:
    """Options may come as query parameters or as multipart form fields (form wins)."""

    async def options(request: Request, query: Annotated[model, Query()]) -> Options:  # type: ignore[valid-type]
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return query
        form = await request.form()
        fields = {k: v for k, v in form.items() if k in model.model_fields and isinstance(v, str)}
        if not fields:
            return query
        try:
            return model.model_validate({**query.model_dump(exclude_unset=True), **fields})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ApiError("invalid_option", problems) from None

    return options


CutoutQuery = Annotated[CutoutOptions, Depends(_merged_with_form(CutoutOptions))]
MaskQuery = Annotated[MaskOptions, Depends(_merged_with_form(MaskOptions))]


async def run_admitted(state: ServiceState, work: Callable[[], T], pixels: int) -> T:
    """Run blocking `work` under admission (count and memory), mapping refusals to their HTTP errors."""
    if not state.ready.is_set():
        raise retry_later("not_ready", "The model is still loading.")
    try:
        return await state.admission.run(work, pixels)
    except Overloaded as exc:
        state.telemetry.rejected.labels("overloaded").inc()
        raise retry_later("overloaded", f"Try again shortly: {exc}.") from None
    except TimedOut as exc:
        state.telemetry.rejected.labels("timeout").inc()
        raise ApiError("timeout", str(exc)) from None


def timed(state: ServiceState, step: Callable[[], T]) -> T:
    started = time.perf_counter()
    try:
        return step()
    finally:
        state.telemetry.inference.observe(time.perf_counter() - started)
