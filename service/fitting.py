"""How an image is fitted to the model's input (the square, and the aspect view), and mapped back.

The same rule runs in training (as TensorFlow ops, see training/pipeline.py) and here in serving, and the
ONNX metadata names the rule and the padding colour so the two can never drift apart silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

STRETCH = "stretch"  # resize to size x size, aspect ratio not kept: every input pixel carries information
LETTERBOX = "letterbox"  # keep aspect ratio, pad the short side
FIT_MODES = (STRETCH, LETTERBOX)
# ImageNet mean in RGB: after the caffe-style normalisation inside the model, padding becomes ~0.
PAD_RGB = (124, 116, 104)


@dataclass(frozen=True)
class Placement:
    """Where the (resized) image sits inside the model input: used to cut the prediction back out."""

    left: int
    top: int
    width: int
    height: int


def letterbox_placement(width: int, height: int, size: int) -> Placement:
    scale = size / max(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    return Placement((size - new_w) // 2, (size - new_h) // 2, new_w, new_h)


def fit_image(image: Image.Image, size: int, mode: str, pad_rgb=PAD_RGB) -> tuple[np.ndarray, Placement]:
    """RGB PIL image -> float32 HxWx3 array (0..255) of the model size, plus where the photo sits in it."""
    if mode == STRETCH:
        placement = Placement(0, 0, size, size)
        canvas = image.resize((size, size), Image.BILINEAR)
    elif mode == LETTERBOX:
        placement = letterbox_placement(image.width, image.height, size)
        canvas = Image.new("RGB", (size, size), tuple(pad_rgb))
        canvas.paste(image.resize((placement.width, placement.height), Image.BILINEAR), (placement.left, placement.top))
    else:
        raise ValueError(f"unknown fit mode {mode!r}; expected one of {FIT_MODES}")
    return np.asarray(canvas, dtype=np.float32), placement


# The aspect view keeps a photo's proportions up to this ratio; a longer panorama is squeezed to it, so the
# view never has far more pixels, or a far thinner side, than the square.
MAX_ASPECT_VIEW_RATIO = 4.0


def multiple_of_16(length: float) -> int:
    return max(16, int(round(length / 16)) * 16)


def aspect_area_shape(width: int, height: int, size: int) -> tuple[int, int]:
    """(height, width) of a model input with the photo's aspect ratio and about size x size pixels, so it costs
    what the square costs; sides are multiples of 16 (the encoder's stride)."""
    aspect = min(max(width / height, 1 / MAX_ASPECT_VIEW_RATIO), MAX_ASPECT_VIEW_RATIO)
    return multiple_of_16(size / aspect**0.5), multiple_of_16(size * aspect**0.5)


def mirrored_view(image: Image.Image, height: int, width: int) -> np.ndarray:
    """RGB PIL image -> float32 height x width x 3 array (0..255) of the photo resized and mirrored left to right."""
    resized = np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.float32)
    return np.ascontiguousarray(resized[:, ::-1])


def unfit_probability(prob: np.ndarray, placement: Placement, width: int, height: int) -> np.ndarray:
    """Model-size probability map -> float32 map at the original width x height (bilinear)."""
    crop = prob[placement.top : placement.top + placement.height, placement.left : placement.left + placement.width]
    resized = Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32)).resize((width, height), Image.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)
