"""POST /remove-background and POST /mask: upload -> decode -> segment -> render -> encode."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import Response

from service.dependencies import CutoutQuery, MaskQuery, ServiceState, State, require_api_key, run_admitted, timed
from service.errors import ApiError, openapi_responses
from service.imaging import FORMATS, decode_image, encode_image, image_pixels
from service.removal import CutoutOptions, NoPersonFound, OptionError, Result, render_cutout, render_mask, segment
from service.uploads import read_image_bytes

IMAGE_ROUTES = ("/remove-background", "/mask")
RESULT_HEADERS = ["X-Subject-BBox", "X-Person-Found", "X-Confidence", "X-Model", "X-Processing-Time-Ms"]
ERRORS = openapi_responses(
    "missing_file", "empty_file", "unauthorized", "upload_timeout", "upload_too_large", "too_many_pixels",
    "unsupported_image", "unsupported_media_type", "corrupt_image", "invalid_option", "no_person",
    "overloaded", "not_ready", "timeout",
)  # fmt: skip
PICTURE = {200: {"content": {"image/png": {}, "image/webp": {}, "image/jpeg": {}}, "description": "The picture."}}
PhotoFile = Annotated[UploadFile | None, File(description="The photo (or send it as a raw image/* body)")]

router = APIRouter(dependencies=[Depends(require_api_key)])


def respond(state: ServiceState, result: Result, payload: bytes, media_type: str, started: float) -> Response:
    headers = {
        "X-Subject-BBox": ",".join(map(str, result.bbox)) if result.bbox else "none",
        "X-Person-Found": str(result.person_found).lower(),
        "X-Confidence": f"{result.confidence:.3f}",
        "X-Model": state.segmenter.info.name,
        "X-Processing-Time-Ms": f"{(time.perf_counter() - started) * 1000:.1f}",
    }
    return Response(payload, media_type=media_type, headers=headers)


def _user_errors(step):
    """Run a rendering step; option conflicts and "no person" (when asked to fail) become 422s."""
    try:
        return step()
    except (OptionError, NoPersonFound) as exc:
        raise ApiError("no_person" if isinstance(exc, NoPersonFound) else "invalid_option", str(exc)) from None


def _cutout(state: ServiceState, data: bytes, background_data: bytes | None, options: CutoutOptions) -> Result:
    """decode -> segment -> render. Its own function so that the photo and its alpha are let go before the
    (large) encoded file is made: the result's picture is all that encoding needs."""
    photo = decode_image(data, state.settings.max_pixels)
    background = decode_image(background_data, state.settings.max_pixels) if background_data else None
    segmentation = _user_errors(lambda: timed(state, lambda: segment(state.segmenter, photo, options)))
    return _user_errors(lambda: render_cutout(photo, segmentation, options, background))


@router.post("/remove-background", responses={**PICTURE, **ERRORS}, response_class=Response, summary="Cut the person out")
async def remove_background(
    request: Request,
    state: State,
    options: CutoutQuery,
    file: PhotoFile = None,
    bg_image: Annotated[UploadFile | None, File(description="Optional background picture, scaled to cover")] = None,
):
    """RGBA PNG cutout (or WebP, or JPEG on a background) at the photo's size."""
    started = time.perf_counter()
    data = await read_image_bytes(request, file)
    background_data = await bg_image.read() if bg_image is not None else None

    def work():
        result = _cutout(state, data, background_data, options)
        return result, encode_image(result.image, options.format)

    result, payload = await run_admitted(state, work, image_pixels(data) + image_pixels(background_data))
    return respond(state, result, payload, FORMATS[options.format][1], started)


@router.post("/mask", responses={**PICTURE, **ERRORS}, response_class=Response, summary="The person mask")
async def mask(request: Request, state: State, options: MaskQuery, file: PhotoFile = None):
    """Single-channel 8-bit PNG: soft probability, or binary with `threshold`."""
    started = time.perf_counter()
    data = await read_image_bytes(request, file)

    def work():
        photo = decode_image(data, state.settings.max_pixels)
        segmentation = _user_errors(lambda: timed(state, lambda: segment(state.segmenter, photo, options)))
        result = render_mask(segmentation, options)
        return result, encode_image(result.image, "png")

    result, payload = await run_admitted(state, work, image_pixels(data))
    return respond(state, result, payload, "image/png", started)
