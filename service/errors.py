"""The error catalogue and the one JSON error shape: {"error": {"code": "...", "message": "..."}}.

Every error the service sends is a code in CATALOGUE. The OpenAPI responses are generated from it, and
a test checks that the README's error table says the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

RETRY_AFTER_S = "1"


@dataclass(frozen=True)
class ErrorKind:
    status: int
    when: str


CATALOGUE: dict[str, ErrorKind] = {
    "missing_file": ErrorKind(400, "no file, or the wrong multipart field"),
    "empty_file": ErrorKind(400, "the file has zero bytes"),
    "unauthorized": ErrorKind(401, "`CUTOUT_API_KEY` is set and `X-API-Key` is missing or wrong"),
    "upload_timeout": ErrorKind(408, "the upload took longer than `CUTOUT_UPLOAD_TIMEOUT_S`"),
    "upload_too_large": ErrorKind(413, "body over `CUTOUT_MAX_UPLOAD_MB` (checked while streaming)"),
    "too_many_pixels": ErrorKind(413, "image over `CUTOUT_MAX_PIXELS` (checked from the header, before decoding)"),
    "unsupported_image": ErrorKind(415, "not an image (text, SVG, ...)"),
    "unsupported_media_type": ErrorKind(415, "a body that is neither multipart nor `image/*`"),
    "corrupt_image": ErrorKind(422, "truncated or corrupt image"),
    "invalid_option": ErrorKind(422, "bad option values"),
    "no_person": ErrorKind(422, "`on_empty=error` and no person was found"),
    "overloaded": ErrorKind(503, "over capacity (with `Retry-After`)"),
    "not_ready": ErrorKind(503, "still warming up (with `Retry-After`)"),
    "timeout": ErrorKind(504, "processing took longer than `CUTOUT_REQUEST_TIMEOUT_S`"),
}
# Errors of the HTTP framework itself (unknown route, wrong method) and the last-resort handler.
GENERIC_CODES = {404: "not_found", 405: "method_not_allowed", 500: "internal_error"}


class ApiError(StarletteHTTPException):
    """An error from the catalogue (FastAPI re-raises these from body parsing too)."""

    def __init__(self, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(status_code=CATALOGUE[code].status, detail=message, headers=headers)
        self.code = code


def retry_later(code: str, message: str) -> ApiError:
    return ApiError(code, message, {"Retry-After": RETRY_AFTER_S})


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def api_error_response(error: ApiError) -> JSONResponse:
    return error_response(error.status_code, error.code, str(error.detail), error.headers)


def openapi_responses(*codes: str) -> dict:
    """OpenAPI `responses` for these catalogue codes, grouped by status."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(CATALOGUE[code].status, []).append(code)
    return {
        status: {
            "description": "; ".join(f"`{c}`: {CATALOGUE[c].when}" for c in group),
            "content": {"application/json": {"example": {"error": {"code": group[0], "message": "..."}}}},
        }
        for status, group in sorted(by_status.items())
    }


def readme_table() -> str:
    """The README's error table, as the catalogue has it."""
    rows = ["| status | code | when |", "|---|---|---|"]
    rows += [f"| {kind.status} | `{code}` | {kind.when} |" for code, kind in CATALOGUE.items()]
    return "\n".join(rows)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body"))
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    from service.imaging import ImageError  # imaging knows nothing of HTTP; its codes are in the catalogue

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        if isinstance(exc, ApiError):
            return api_error_response(exc)
        code = GENERIC_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError):
        return api_error_response(ApiError("invalid_option", _describe_validation(exc)))

    @app.exception_handler(ImageError)
    async def image_error(_request: Request, exc: ImageError):
        return api_error_response(ApiError(exc.code, str(exc)))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception):
        message = f"unexpected {type(exc).__name__}; the request was not processed"
        return error_response(500, GENERIC_CODES[500], message)
