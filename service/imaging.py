"""Decode uploads safely into RGB images, and encode results.

Every failure is an ImageError with a stable code, so the HTTP layer can map it to a clear 4xx response.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from service.png import encode_png

# Pillow's own bomb guard is replaced by our explicit pixel limit (checked before decoding pixels).
Image.MAX_IMAGE_PIXELS = None


class ImageError(ValueError):
    """An upload that cannot be turned into an image; `code` names the failure (see service.errors)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _flatten_to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB. Transparent pixels become white (what a viewer would show)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16/32-bit or float greyscale: scale the real range down to 8 bits instead of clipping at 255.
        data = np.asarray(image, dtype=np.float64)
        top = 65535.0 if data.max() > 255 else 255.0 if data.max() > 1 else 1.0
        image = Image.fromarray((np.clip(data / top, 0, 1) * 255).astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Bytes of an uploaded file -> RGB image, upright (EXIF orientation applied), first frame only."""
    if not data:
        raise ImageError("empty_file", "The uploaded file is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
            width, height = image.size  # header only: no pixels decoded yet
            if width * height > max_pixels:
                raise ImageError(
                    "too_many_pixels",
                    f"The image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}.",
                )
            image.seek(0)  # animated GIF/WebP/APNG: the first frame
            image.load()
            image = ImageOps.exif_transpose(image) or image
            return _flatten_to_rgb(image)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(
            "unsupported_image", "The file is not an image in a supported format (JPEG, PNG, WebP, GIF, BMP, TIFF)."
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise ImageError("corrupt_image", f"The image could not be decoded: {exc}") from None


def resize_to_max(image: Image.Image, max_size: int | None) -> Image.Image:
    """Shrink so the longest side is at most max_size (never enlarges)."""
    if not max_size or max(image.size) <= max_size:
        return image
    scale = max_size / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)


FORMATS = {"png": ("PNG", "image/png"), "webp": ("WEBP", "image/webp"), "jpeg": ("JPEG", "image/jpeg")}


def encode_image(image: Image.Image, fmt: str) -> bytes:
    if fmt == "png" and image.mode in ("L", "RGB", "RGBA"):
        return encode_png(image)  # the common case: on every core, read in blocks (no full-size copy)
    pil_format, _ = FORMATS[fmt]
    buffer = io.BytesIO()
    if fmt == "webp":
        image.save(buffer, pil_format, lossless=image.mode == "L", quality=90)
    elif fmt == "png":
        image.save(buffer, pil_format, compress_level=1)
    else:
        image.convert("RGB").save(buffer, pil_format, quality=92)
    return buffer.getvalue()


def image_pixels(data: bytes | None) -> int:
    """Width x height from the image header (no pixels decoded); 0 when unreadable (decoding will say why)."""
    if not data:
        return 0
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.width * image.height
    except Exception:  # any failure is reported properly by decode_image
        return 0
