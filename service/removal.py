"""The request path shared by the HTTP API, the batch command, the Python API and evaluation:
photo -> probability -> mask or cutout, with the options users can set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field

from service import compose
from service.imaging import resize_to_max
from service.matte import estimate_foreground
from service.refine import refine_probability
from service.segmenter import Segmenter

# Refinement is on by default: it measurably improved boundary F on the validation split (see models/README.md).
DEFAULT_REFINE = True
COLOR_PATTERN = r"^#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$"


class MaskOptions(BaseModel):
    threshold: float | None = Field(
        None, gt=0.0, lt=1.0, description="Binary output at this probability (e.g. 0.5); omitted: soft alpha."
    )
    refine: bool = Field(DEFAULT_REFINE, description="Edge-aware refinement at full resolution (guided filter).")
    max_size: int | None = Field(None, ge=16, le=8192, description="Longest side of the output in pixels (never enlarges).")


class CutoutOptions(MaskOptions):
    format: Literal["png", "webp", "jpeg"] = Field("png", description="Output format; jpeg needs an opaque background.")
    bg_color: str | None = Field(None, pattern=COLOR_PATTERN, description="Background colour, #RRGGBB or #RRGGBBAA.")
    crop: bool = Field(False, description="Crop to the subject's bounding box.")
    crop_margin: int = Field(0, ge=0, le=4096, description="Pixels kept around the subject when cropping.")
    decontaminate: bool = Field(
        True, description="Estimate the person's own colour in semi-transparent edge pixels (no old-background fringe)."
    )


@dataclass
class Result:
    image: Image.Image
    bbox: tuple[int, int, int, int] | None  # subject box in the returned image's pixels


def predict_probability(segmenter: Segmenter, photo: Image.Image, refine: bool = DEFAULT_REFINE) -> np.ndarray:
    prob = segmenter.predict(photo)
    if refine:
        prob = refine_probability(np.asarray(photo), prob, segmenter.info.input_size)
    return prob


def _scaled_bbox(bbox, scale_x: float, scale_y: float):
    if bbox is None:
        return None
    left, top, right, bottom = bbox
    return round(left * scale_x), round(top * scale_y), round(right * scale_x), round(bottom * scale_y)


def render_mask(prob: np.ndarray, options: MaskOptions) -> Result:
    alpha = compose.alpha_from_probability(prob, options.threshold)
    mask = resize_to_max(compose.mask_image(alpha), options.max_size)
    scale = mask.width / alpha.shape[1]
    return Result(mask, _scaled_bbox(compose.subject_bbox(alpha), scale, mask.height / alpha.shape[0]))


class OptionError(ValueError):
    """Options that are valid one by one but not together."""


def render_cutout(photo: Image.Image, prob: np.ndarray, options: CutoutOptions, background: Image.Image | None = None) -> Result:
    if options.format == "jpeg" and options.bg_color is None and background is None:
        raise OptionError("format=jpeg cannot store transparency: also give bg_color or bg_image")
    alpha = compose.alpha_from_probability(prob, options.threshold)
    foreground = np.asarray(photo)
    if options.decontaminate:
        foreground = estimate_foreground(foreground, alpha)
    if background is not None:
        picture = compose.on_image(foreground, alpha, background)
    elif options.bg_color:
        picture = compose.on_color(foreground, alpha, compose.parse_color(options.bg_color))
    else:
        picture = compose.cutout(foreground, alpha)
    bbox = compose.subject_bbox(alpha)
    if options.crop and bbox is not None:
        crop_box = compose.expand_box(bbox, options.crop_margin, photo.width, photo.height)
        picture = picture.crop(crop_box)
        bbox = (bbox[0] - crop_box[0], bbox[1] - crop_box[1], bbox[2] - crop_box[0], bbox[3] - crop_box[1])
    before = picture.size
    picture = resize_to_max(picture, options.max_size)
    return Result(picture, _scaled_bbox(bbox, picture.width / before[0], picture.height / before[1]))
