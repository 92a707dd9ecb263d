"""The request path shared by the HTTP API, the batch command, the Python API and evaluation:
photo -> probability -> (which person, how sure) -> mask or cutout, with the options users can set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field

from service import compose, subject
from service.imaging import resize_to_max
from service.matte import decontaminate, shape_alpha
from service.refine import full_resolution_alpha
from service.segmenter import Segmenter
from service.zoom import zoomed_map

# Refinement is on by default: it measurably improved boundary F on the validation split (see models/README.md).
DEFAULT_REFINE = True
# The second look at small subjects (service.zoom) is off by default: on dev val it did not pay (models/README.md).
DEFAULT_ZOOM = False
# Stray blobs (small regions the model is unsure of, service.subject.without_strays) are dropped by default: it pays
# on dev val (models/README.md, "Stray blobs"); "all" keeps every region the model marks, as before.
DEFAULT_SUBJECT = "people"
# What each `subject` choice keeps of the model's map; "all" keeps all of it.
KEEP_RULES = {"people": subject.without_strays, "main": subject.main_subject}
COLOR_PATTERN = r"^#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$"


class MaskOptions(BaseModel):
    threshold: float | None = Field(
        None, gt=0.0, lt=1.0, description="Binary output at this probability (e.g. 0.5); omitted: soft alpha."
    )
    refine: bool = Field(DEFAULT_REFINE, description="Edge-aware refinement at full resolution (guided filter).")
    max_size: int | None = Field(None, ge=16, le=8192, description="Longest side of the output in pixels (never enlarges).")
    subject: Literal["people", "all", "main"] = Field(
        DEFAULT_SUBJECT,
        description="people: the people, without stray blobs (regions under 30% of the largest one's area that the "
        "model is also unsure of); "
        "all: every region the model marks; main: only the main person (the photo's subject).",
    )
    zoom: bool = Field(
        DEFAULT_ZOOM, description="A second, closer look when the people fill little of the photo (small, distant people)."
    )
    on_empty: Literal["empty", "error"] = Field(
        "empty", description="When no person is found: an empty result, or a 422 error with code no_person."
    )


class CutoutOptions(MaskOptions):
    format: Literal["png", "webp", "jpeg"] = Field("png", description="Output format; jpeg needs an opaque background.")
    bg_color: str | None = Field(None, pattern=COLOR_PATTERN, description="Background colour, #RRGGBB or #RRGGBBAA.")
    crop: bool = Field(False, description="Crop to the subject's bounding box.")
    crop_margin: int = Field(0, ge=0, le=4096, description="Pixels kept around the subject when cropping.")
    decontaminate: bool = Field(
        True, description="Estimate the person's own colour in semi-transparent edge pixels (no old-background fringe)."
    )


class OptionError(ValueError):
    """Options that are valid one by one but not together."""


class NoPersonFound(ValueError):
    """on_empty=error and the photo shows no person."""


@dataclass
class Segmentation:
    """The alpha to render (after the user's threshold and subject choice), and how sure the model was."""

    alpha: np.ndarray  # uint8, the photo's size
    person_found: bool
    confidence: float


@dataclass
class Result:
    image: Image.Image
    bbox: tuple[int, int, int, int] | None  # subject box in the returned image's pixels
    person_found: bool = True
    confidence: float = 1.0


def alpha_curve(threshold: float | None):
    """Probability -> uint8 alpha: the shaped soft curve, or a hard cut at `threshold`."""
    if threshold is None:
        return shape_alpha
    return lambda prob: np.where(prob >= threshold, 255, 0).astype(np.uint8)


def segment(segmenter: Segmenter, photo: Image.Image, options: MaskOptions) -> Segmentation:
    """The model's view of the photo -> full-resolution alpha, with "no person found" and the subject choice.

    Which person and how sure are decided on the model's small map; only the alpha is made at full size.
    """
    small = segmenter.predict_small(photo)
    assessment = subject.assess(small)
    if not assessment.person_found:
        if options.on_empty == "error":
            raise NoPersonFound("No person was found in the image.")
        return Segmentation(np.zeros((photo.height, photo.width), np.uint8), False, assessment.confidence)
    keep_rule = KEEP_RULES.get(options.subject)
    keep = keep_rule(small) if keep_rule else None
    if keep is not None:
        small = np.where(keep, small, 0.0).astype(np.float32)
    if options.zoom:
        small = zoomed_map(segmenter, photo, small)
        if keep is not None:  # the closer look sees the others again
            keep = np.asarray(Image.fromarray(keep.astype(np.uint8) * 255).resize(small.shape[::-1], Image.BILINEAR)) > 0
            small = np.where(keep, small, 0.0).astype(np.float32)
    alpha = full_resolution_alpha(photo, small, segmenter.info.input_size, alpha_curve(options.threshold), options.refine)
    return Segmentation(alpha, True, assessment.confidence)


def _scaled_bbox(bbox, scale_x: float, scale_y: float):
    if bbox is None:
        return None
    left, top, right, bottom = bbox
    return round(left * scale_x), round(top * scale_y), round(right * scale_x), round(bottom * scale_y)


def render_mask(segmentation: Segmentation, options: MaskOptions) -> Result:
    alpha = segmentation.alpha
    mask = resize_to_max(compose.mask_image(alpha), options.max_size)
    scale = mask.width / alpha.shape[1]
    bbox = _scaled_bbox(compose.subject_bbox(alpha), scale, mask.height / alpha.shape[0])
    return Result(mask, bbox, segmentation.person_found, segmentation.confidence)


def render_cutout(
    photo: Image.Image, segmentation: Segmentation, options: CutoutOptions, background: Image.Image | None = None
) -> Result:
    if options.format == "jpeg" and options.bg_color is None and background is None:
        raise OptionError("format=jpeg cannot store transparency: also give bg_color or bg_image")
    alpha = segmentation.alpha
    # One full-size RGBA array, made once: the edge colours are estimated in it, and the picture shares it.
    rgba = compose.rgba_pixels(photo, alpha)
    if options.decontaminate:
        decontaminate(rgba, photo)
    picture = compose.cutout(rgba)
    if background is not None:
        picture = compose.on_image(picture, background)
    elif options.bg_color:
        picture = compose.on_color(picture, compose.parse_color(options.bg_color))
    bbox = compose.subject_bbox(alpha)
    if options.crop and bbox is not None:
        crop_box = compose.expand_box(bbox, options.crop_margin, photo.width, photo.height)
        picture = picture.crop(crop_box)
        bbox = (bbox[0] - crop_box[0], bbox[1] - crop_box[1], bbox[2] - crop_box[0], bbox[3] - crop_box[1])
    before = picture.size
    picture = resize_to_max(picture, options.max_size)
    bbox = _scaled_bbox(bbox, picture.width / before[0], picture.height / before[1])
    return Result(picture, bbox, segmentation.person_found, segmentation.confidence)
