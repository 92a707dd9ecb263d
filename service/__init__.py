"""Cutout service: background removal for photos of people (FastAPI + onnxruntime, no TensorFlow).

Python API for scripts:

    from service import Segmenter, remove_background
    segmenter = Segmenter("models/cutout-person.onnx")
    cutout = remove_background(segmenter, Image.open("photo.jpg"))   # RGBA PIL image
"""

__version__ = "0.20.0"

from service.api import cutout, mask, mask_result, remove_background  # noqa: E402
from service.removal import NoPersonFound, Result  # noqa: E402
from service.segmenter import Segmenter  # noqa: E402

__all__ = ["NoPersonFound", "Result", "Segmenter", "cutout", "mask", "mask_result", "remove_background", "__version__"]
