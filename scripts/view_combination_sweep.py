"""How should the service combine its two views of a photo? Score several rules on dev val, each through the
served path (stray blobs, guided filter, alpha), as `python -m training evaluate --parts photos,no_person` does.

Each view's map is computed once per photo and kept, so every further rule costs the refinement and scoring only:

    python -m scripts.view_combination_sweep models/cutout-person.onnx mean logit logit:0.55 logit:0.5:stray=0.9

A rule is KIND[:ASPECT_WEIGHT][:stray=SURENESS][:cut=SHIFT][:side=PIXELS]: KIND `mean` (of probabilities, as 0.14.0
to 0.19.0 served) or `logit` (of log-odds, as served since 0.19.1); ASPECT_WEIGHT is the mirrored aspect view's share
(0.5); `stray=` the sureness under which a small region is a stray blob (service.subject.STRAY_CONFIDENCE); `cut=`
moves the soft alpha's 0.3..0.7 ramp, and with it the 0.5 cut, by SHIFT; `side=` the longest side of the copy the
guided filter is fitted on (service.refine.REFINE_WORK_SIDE). Prints one line per rule: mean IoU, boundary F,
person-free crops with a false blob, mean false area, and with `--parts ...,screens` the screens' edge error and
colour bleed.
"""

from __future__ import annotations

import argparse
import functools
import hashlib

import numpy as np

from service import matte, refine, removal, subject
from service.segmenter import SURE, Segmenter
from training import dataset
from training.evaluate import evaluate, segmenter_predict


def combine(square: np.ndarray, aspect: np.ndarray, kind: str, aspect_weight: float) -> np.ndarray:
    if kind == "mean":
        return (1 - aspect_weight) * square + aspect_weight * aspect
    square, aspect = (np.clip(p, SURE, 1 - SURE) for p in (square, aspect))
    log_odds = (1 - aspect_weight) * np.log(square / (1 - square)) + aspect_weight * np.log(aspect / (1 - aspect))
    return (1 / (1 + np.exp(-log_odds))).astype(np.float32)


class ViewsOnce(Segmenter):
    """The shipped segmenter with each photo's two view maps kept, and the rule that combines them settable."""

    def __init__(self, model: str):
        super().__init__(model, provider="cpu")
        self.views: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.rule = ("logit", 0.5)

    def predict_small(self, image):
        key = hashlib.sha1(image.tobytes()).hexdigest()
        if key not in self.views:
            square = self.predict_square(image)
            self.views[key] = (square, self.predict_mirrored_aspect(image, square.shape[1], square.shape[0]))
        return combine(*self.views[key], *self.rule)


def parse_rule(text: str) -> tuple[str, float, float, float, int]:
    kind, *rest = text.split(":")
    if kind not in ("mean", "logit"):
        raise SystemExit(f"unknown rule {text!r}: KIND is mean or logit")
    weight, stray, shift, side = 0.5, subject.STRAY_CONFIDENCE, 0.0, refine.REFINE_WORK_SIDE
    for part in rest:
        if part.startswith("stray="):
            stray = float(part.removeprefix("stray="))
        elif part.startswith("cut="):
            shift = float(part.removeprefix("cut="))
        elif part.startswith("side="):
            side = int(part.removeprefix("side="))
        else:
            weight = float(part)
    return kind, weight, stray, shift, side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="an ONNX file with both views (exported with --aspect-view)")
    parser.add_argument("rules", nargs="+", help="KIND[:ASPECT_WEIGHT][:stray=SURENESS][:cut=SHIFT]")
    parser.add_argument("--data", default="../shared/data/people_segmentation")
    parser.add_argument("--parts", default="photos,no_person", help="photos,no_person[,screens]")
    args = parser.parse_args()
    segmenter = ViewsOnce(args.model)
    samples = dataset.validate(dataset.discover(args.data).val, "val")
    for text in args.rules:
        kind, weight, stray, shift, refine.REFINE_WORK_SIDE = parse_rule(text)
        segmenter.rule = (kind, weight)
        # The service reads these at call time; this process only ever scores.
        removal.KEEP_RULES["people"] = functools.partial(subject.without_strays, confidence=stray)
        removal.shape_alpha = functools.partial(matte.shape_alpha, low=matte.ALPHA_LOW + shift, high=matte.ALPHA_HIGH + shift)
        result = evaluate(segmenter_predict(segmenter), samples, args.parts.split(","), progress=False)
        photos, no_person = result["metrics"], result["no_person"]
        blobs = round(no_person["false_blob_share"] * no_person["crops"])
        screens = result.get("screens")
        print(
            f"{text:28s} mean IoU {photos['mean_iou']:.4f}  boundary F {photos['boundary_f']:.4f}  "
            f"false blobs {blobs} of {no_person['crops']}  false area {no_person['mean_false_area']:.2%}"
            + (f"  screens edge error {screens['edge_error']:.2f} colour bleed {screens['colour_bleed']:.2f}" if screens else ""),
            flush=True,
        )


if __name__ == "__main__":
    main()
