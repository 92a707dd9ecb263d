"""A small Python API over the same code path as the HTTP service."""

from __future__ import annotations

from PIL import Image, ImageOps

from service.removal import CutoutOptions, MaskOptions, Result, render_cutout, render_mask, segment
from service.segmenter import Segmenter


def _upright_rgb(image: Image.Image) -> Image.Image:
    return (ImageOps.exif_transpose(image) or image).convert("RGB")


def cutout(segmenter: Segmenter, image: Image.Image, background: Image.Image | None = None, **options) -> Result:
    """The cutout with what the service says about it: `.image`, `.confidence`, `.person_found`, `.bbox`.

    Options as in CutoutOptions; with on_empty="error", a photo without a person raises NoPersonFound.
    """
    photo = _upright_rgb(image)
    parsed = CutoutOptions(**options)
    return render_cutout(photo, segment(segmenter, photo, parsed), parsed, background)


def remove_background(segmenter: Segmenter, image: Image.Image, background: Image.Image | None = None, **options) -> Image.Image:
    """The cutout as a PIL image (RGBA unless a background is given). Options as in CutoutOptions."""
    return cutout(segmenter, image, background, **options).image


def mask_result(segmenter: Segmenter, image: Image.Image, **options) -> Result:
    """The person mask (8-bit "L" image) with its confidence; options as in MaskOptions."""
    photo = _upright_rgb(image)
    parsed = MaskOptions(**options)
    return render_mask(segment(segmenter, photo, parsed), parsed)


def mask(segmenter: Segmenter, image: Image.Image, **options) -> Image.Image:
    """The person mask as an 8-bit "L" image. Options as in MaskOptions."""
    return mask_result(segmenter, image, **options).image
