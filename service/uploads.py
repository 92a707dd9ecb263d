"""Getting the upload in: a streaming byte limit, an upload deadline, and the two ways to send an image."""

from __future__ import annotations

import asyncio

from fastapi import Request, UploadFile

from service.errors import ApiError, error_response


class BodyLimit:
    """ASGI middleware: refuse bodies over `max_bytes` while they stream in (or at once, from
    Content-Length), and bodies that take longer than `timeout_s` to arrive: a slow client costs
    a connection, never an inference slot, and nothing big is ever buffered."""

    def __init__(self, app, max_bytes: int, timeout_s: float):
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    def _too_large(self) -> ApiError:
        return ApiError("upload_too_large", f"The request body exceeds the {self.max_bytes / 2**20:g} MB limit.")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode() or "0"
        if declared.isdigit() and int(declared) > self.max_bytes:
            err = self._too_large()
            response = error_response(err.status_code, err.code, err.detail, {"Connection": "close"})
            return await response(scope, receive, send)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        received, body_done = 0, False

        async def limited_receive():
            nonlocal received, body_done
            if body_done:
                return await receive()  # e.g. waiting for a disconnect: no deadline applies
            try:
                message = await asyncio.wait_for(receive(), timeout=max(0.001, deadline - loop.time()))
            except TimeoutError:
                raise ApiError("upload_timeout", f"The upload took longer than {self.timeout_s:g} s.") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)


RAW_TYPES = ("image/", "application/octet-stream")


async def read_image_bytes(request: Request, file: UploadFile | None, field: str = "file") -> bytes:
    """The image from multipart field `field`, or from a raw image/* (or octet-stream) body."""
    content_type = request.headers.get("content-type", "")
    if file is not None:
        data = await file.read()
    elif content_type.startswith("multipart/form-data"):
        form = await request.form()
        names = ", ".join(sorted(set(form.keys()))) or "none"
        raise ApiError("missing_file", f"Send the image in the multipart field '{field}' (fields received: {names}).")
    elif content_type.startswith(RAW_TYPES):
        data = await request.body()
    else:
        body = await request.body()
        if not body:
            raise ApiError("missing_file", f"No image: send multipart field '{field}' or a raw image/* body.")
        raise ApiError(
            "unsupported_media_type",
            f"Content-Type '{content_type or 'none'}' is not accepted; use multipart/form-data or image/*.",
        )
    if not data:
        raise ApiError("empty_file", "The uploaded file is empty.")
    return data
