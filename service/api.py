"""A small Python API over the same code path as the HTTP service."""

from __future__ import annotations

from PIL import Image, ImageOps

from service.removal import CutoutOptions, MaskOptions, predict_probability, render_cutout, render_mask
from service.segmenter import Segmenter


def _upright_rgb(image: Image.Image) -> Image.Image:
    return (ImageOps.exif_transpose(image) or image).convert("RGB")


def remove_background(segmenter: Segmenter, image: Image.Image, background: Image.Image | None = None, **options) -> Image.Image:
    """The cutout as a PIL image (RGBA unless a background is given). Options as in CutoutOptions."""
    photo = _upright_rgb(image)
    parsed = CutoutOptions(**options)
    return render_cutout(photo, predict_probability(segmenter, photo, parsed.refine), parsed, background).image


def mask(segmenter: Segmenter, image: Image.Image, **options) -> Image.Image:
    """The person mask as an 8-bit "L" image. Options as in MaskOptions."""
    photo = _upright_rgb(image)
    parsed = MaskOptions(**options)
    return render_mask(predict_probability(segmenter, photo, parsed.refine), parsed).image
