"""Does the strip-wise full-resolution alpha match the previous release's full-size float path?

python -m scripts.compare_alpha --old-checkout DIR [--sizes 0.7 12 24]

Both turn the same model map into a refined probability for a mosaic photo (scripts.loadgen): the old way
upsamples the map to the photo's size, then applies the guided filter with full-size float arrays
(DIR/service/refine.py); the new way (service.refine.full_resolution_alpha) works in strips. Prints the
max and mean absolute difference in 1/255 steps, and the share of pixels more than 2/255 apart.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from scripts.benchmark_large import SIZES
from scripts.loadgen import photo_mosaic
from service import Segmenter
from service.fitting import Placement, unfit_probability
from service.refine import full_resolution_alpha
from service.settings import DEFAULT_MODEL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old-checkout", type=Path, required=True, help="e.g. a git worktree of v0.1.0")
    parser.add_argument("--sizes", nargs="+", default=["0.7", "12", "24"], choices=list(SIZES))
    args = parser.parse_args()

    spec = importlib.util.spec_from_file_location("old_refine", args.old_checkout / "service" / "refine.py")
    old_refine = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old_refine)
    segmenter = Segmenter(DEFAULT_MODEL, "cpu")
    size = segmenter.info.input_size
    report = {}
    for name in args.sizes:
        photo = Image.open(io.BytesIO(photo_mosaic(*SIZES[name]))).convert("RGB")
        rgb, small = np.asarray(photo), segmenter.predict_small(photo)
        full = unfit_probability(small, Placement(0, 0, small.shape[1], small.shape[0]), photo.width, photo.height)
        old = np.round(old_refine.refine_probability(rgb, full, size) * 255)
        new = full_resolution_alpha(photo, small, size, lambda p: np.round(p * 255).astype(np.uint8), refine=True)
        difference = np.abs(old - new.astype(np.float64))
        report[f"{name}MP"] = {
            "max_abs_diff_255": float(difference.max()),
            "mean_abs_diff_255": round(float(difference.mean()), 4),
            "share_over_2": round(float((difference > 2).mean()), 6),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
