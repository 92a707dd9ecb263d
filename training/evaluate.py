"""Measure a model exactly as users get it: what /remove-background serves with default options.

`python -m training evaluate MODEL.onnx --data DIR` runs every photo through the service's own code
(decode -> segment -> render the cutout); `--url http://host:port` sends it to a running service's
POST /remove-background instead. The served alpha, thresholded at 128, is scored for IoU, so the
evaluation and the service cannot drift apart. Four reports:

- photos: IoU, boundary F, precision/recall, haze and holes, the confidence and how it ranks the photos;
- screens: each photo's person pasted on green / magenta, scored near the edge (training.edges);
- no_person: the largest person-free square of each photo (>= 224 px, >= 12 px from any person);
- main_subject: photos with several people, `subject=main` against the largest true person region.

Needs numpy, Pillow and onnxruntime only (no TensorFlow, no HTTP client library).
"""

from __future__ import annotations

import io
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from service.imaging import decode_image
from service.removal import CutoutOptions, render_cutout, segment
from service.segmenter import Segmenter
from service.subject import coarse_grid, label_regions
from training import dataset, edges
from training.person_free import FALSE_BLOB_SHARE, largest_person_free_square
from training.scores import THRESHOLD, confusion_counts, scores_from_counts, spearman

BOUNDARY_TOLERANCE_PX = 2
MAX_EVAL_PIXELS = 100_000_000
NO_PERSON_MIN_SIDE, NO_PERSON_MARGIN = 224, 12
PARTS = ("photos", "screens", "no_person", "main_subject")


@dataclass
class Served:
    """What the service returned for one image."""

    alpha: np.ndarray  # uint8
    rgb: np.ndarray  # uint8, the returned colour
    confidence: float
    person_found: bool


Predict = Callable[[bytes, dict], Served]  # (image file bytes, non-default options) -> Served


def segmenter_predict(segmenter: Segmenter) -> Predict:
    def predict(data: bytes, options: dict) -> Served:
        photo = decode_image(data, MAX_EVAL_PIXELS)
        parsed = CutoutOptions(**options)
        segmentation = segment(segmenter, photo, parsed)
        rgba = np.asarray(render_cutout(photo, segmentation, parsed).image)
        return Served(rgba[..., 3], rgba[..., :3], segmentation.confidence, segmentation.person_found)

    return predict


def url_predict(url: str, api_key: str | None = None) -> Predict:
    """POST /remove-background with the photo as a raw image body."""

    def predict(data: bytes, options: dict) -> Served:
        query = urllib.parse.urlencode({k: str(v).lower() if isinstance(v, bool) else v for k, v in options.items()})
        headers = {"Content-Type": "application/octet-stream", **({"X-API-Key": api_key} if api_key else {})}
        request = urllib.request.Request(f"{url.rstrip('/')}/remove-background?{query}", data=data, headers=headers)
        with urllib.request.urlopen(request, timeout=120) as response:
            rgba = np.asarray(Image.open(io.BytesIO(response.read())).convert("RGBA"))
            found = response.headers.get("X-Person-Found", "true") == "true"
            confidence = float(response.headers.get("X-Confidence", "nan"))
        return Served(rgba[..., 3], rgba[..., :3], confidence, found)

    return predict


# ---- masks ---------------------------------------------------------------------------------------------
def load_truth(path: Path) -> np.ndarray:
    """Mask file -> float 0..1 (accepts 0/1, 0/255 and soft masks)."""
    mask = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    return mask / 255.0 if mask.max() > 1 else mask


def _boundary(binary: np.ndarray) -> np.ndarray:
    """Pixels of the mask that touch the outside (mask minus its 3x3 erosion)."""
    image = Image.fromarray(binary.astype(np.uint8) * 255)
    eroded = np.asarray(image.filter(ImageFilter.MinFilter(3))) > 0
    return binary & ~eroded


def boundary_f(pred: np.ndarray, truth: np.ndarray, tolerance: int = BOUNDARY_TOLERANCE_PX) -> float:
    """Boundary F-score: precision/recall of boundary pixels matched within `tolerance` pixels."""
    pb, tb = _boundary(pred >= THRESHOLD), _boundary(truth >= THRESHOLD)
    hit_p, n_p = int(np.sum(pb & edges.dilate(tb, tolerance))), int(pb.sum())
    hit_t, n_t = int(np.sum(tb & edges.dilate(pb, tolerance))), int(tb.sum())
    if n_p == 0 and n_t == 0:
        return 1.0
    precision, recall = (hit_p / n_p if n_p else 0.0), (hit_t / n_t if n_t else 0.0)
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def score_image(pred: np.ndarray, truth: np.ndarray) -> dict:
    tp, fp, fn = confusion_counts(pred, truth)
    return {
        "iou": 1.0 if tp + fp + fn == 0 else tp / (tp + fp + fn),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "boundary_f": boundary_f(pred, truth),
    }


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _mean(records: list[dict], key: str) -> float:
    return float(np.mean([r[key] for r in records])) if records else float("nan")


# ---- the four reports ----------------------------------------------------------------------------------
def evaluate_photos(predict: Predict, samples: Iterable[dataset.Sample], options: dict | None = None) -> tuple[dict, list[dict]]:
    records = []
    for sample in samples:
        data = sample.image.read_bytes()
        started = time.perf_counter()
        served = predict(data, options or {})
        latency_ms = (time.perf_counter() - started) * 1000
        truth = load_truth(sample.mask)
        if served.alpha.shape != truth.shape:
            raise ValueError(f"{sample.stem}: prediction {served.alpha.shape} vs mask {truth.shape}")
        scores = score_image(served.alpha / 255.0, truth)
        haze_holes = edges.haze_and_holes(truth >= THRESHOLD, served.alpha)
        records.append({"stem": sample.stem, "latency_ms": latency_ms, "confidence": served.confidence, **scores, **haze_holes})
    tp, fp, fn = (sum(r[k] for r in records) for k in ("tp", "fp", "fn"))
    ious, confidences = np.array([r["iou"] for r in records]), np.array([r["confidence"] for r in records])
    least_confident = confidences <= np.percentile(confidences, 10)
    latencies = np.array([r["latency_ms"] for r in records])
    summary = {
        "images": len(records),
        "mean_iou": float(ious.mean()),
        **scores_from_counts(tp, fp, fn),
        "boundary_f": _mean(records, "boundary_f"),
        "haze": _mean(records, "haze"),
        "holes": _mean(records, "holes"),
        "confidence_spearman": spearman(confidences, ious),
        "mean_iou_least_confident_10pct": float(ious[least_confident].mean()),
        "mean_iou_other_90pct": float(ious[~least_confident].mean()) if (~least_confident).any() else float("nan"),
        "latency_p50_ms": float(np.percentile(latencies, 50)),
        "latency_p95_ms": float(np.percentile(latencies, 95)),
    }
    return summary, records


def on_screen(photo: np.ndarray, sample: dataset.Sample, index: int) -> tuple[np.ndarray, tuple[int, int, int], np.ndarray]:
    """The sample's true person, the screen colour of the index-th photo (alternately green and magenta), and
    the photo's person pasted on it."""
    person = load_truth(sample.mask) >= THRESHOLD
    screen = edges.SCREENS[index % len(edges.SCREENS)]
    return person, screen, edges.screen_composite(photo, person, screen)


def evaluate_screens(predict: Predict, samples: Iterable[dataset.Sample]) -> tuple[dict, list[dict]]:
    """Each photo's person on a flat screen colour, alternately green and magenta."""
    records = []
    for index, sample in enumerate(samples):
        photo = np.asarray(decode_image(sample.image.read_bytes(), MAX_EVAL_PIXELS))
        person, screen, composite = on_screen(photo, sample, index)
        served = predict(_png(composite), {})
        scores = edges.composite_scores(photo, person, screen, served.rgb, served.alpha)
        records.append({"stem": sample.stem, **scores, **edges.haze_and_holes(person, served.alpha)})
    keys = ("edge_error", "colour_bleed", "haze", "holes")
    return {"images": len(records), **{k: _mean(records, k) for k in keys}}, records


def person_free_crop(sample: dataset.Sample, min_side: int = NO_PERSON_MIN_SIDE) -> Image.Image | None:
    person = load_truth(sample.mask) >= THRESHOLD
    square = largest_person_free_square(person, NO_PERSON_MARGIN, min_side)
    if square is None:
        return None
    top, left, side = square
    photo = decode_image(sample.image.read_bytes(), MAX_EVAL_PIXELS)
    return photo.crop((left, top, left + side, top + side))


def evaluate_no_person(
    predict: Predict, samples: Iterable[dataset.Sample], min_side: int = NO_PERSON_MIN_SIDE
) -> tuple[dict, list[dict]]:
    records = []
    for sample in samples:
        crop = person_free_crop(sample, min_side)
        if crop is None:
            continue
        served = predict(_png(np.asarray(crop)), {})
        false_area = float((served.alpha >= 128).mean())
        records.append({"stem": sample.stem, "side": crop.width, "false_area": false_area, "person_found": served.person_found})
    blobs = [r["false_area"] > FALSE_BLOB_SHARE for r in records]
    return {
        "crops": len(records),
        "mean_false_area": _mean(records, "false_area"),
        "false_blob_share": float(np.mean(blobs)) if records else float("nan"),
        "reported_person_share": float(np.mean([r["person_found"] for r in records])) if records else float("nan"),
    }, records


def true_regions(truth: np.ndarray) -> list[np.ndarray]:
    """The true person regions (on the subject grid, mapped back to pixels), largest first."""
    labels, count = label_regions(coarse_grid(truth) >= THRESHOLD)
    full = np.asarray(Image.fromarray(labels.astype(np.int32)).resize(truth.shape[::-1], Image.NEAREST))
    regions = [(truth >= THRESHOLD) & (full == k) for k in range(1, count + 1)]
    return sorted(regions, key=lambda r: -int(r.sum()))


def evaluate_main_subject(
    predict: Predict, samples: Iterable[dataset.Sample], min_ratio: float = 0.05
) -> tuple[dict, list[dict]]:
    """Photos whose second person region is at least min_ratio of the largest: IoU with the largest region."""
    records = []
    for sample in samples:
        regions = true_regions(load_truth(sample.mask))
        if len(regions) < 2 or regions[1].sum() < min_ratio * regions[0].sum():
            continue
        data, main = sample.image.read_bytes(), regions[0]
        others = np.logical_or.reduce(regions[1:])
        every, only_main = predict(data, {}).alpha >= 128, predict(data, {"subject": "main"}).alpha >= 128
        records.append(
            {
                "stem": sample.stem,
                "iou_all": float((every & main).sum() / max(1, (every | main).sum())),
                "iou_main": float((only_main & main).sum() / max(1, (only_main | main).sum())),
                "others_dropped": float(1 - (only_main & others).sum() / max(1, (every & others).sum())),
                "main_kept": float((only_main & main).sum() / max(1, main.sum())),
            }
        )
    keys = ("iou_all", "iou_main", "others_dropped", "main_kept")
    return {"photos": len(records), **{k: _mean(records, k) for k in keys}}, records


def evaluate(
    predict: Predict,
    samples: list[dataset.Sample],
    parts: Iterable[str] = PARTS,
    progress: bool = True,
    options: dict | None = None,
) -> dict:
    """Every asked-for report on the same samples: {"metrics": {...}, "screens": {...}, ..., "per_image": [...]}.

    options: non-default service options for the photos report (e.g. {"zoom": True}), to measure them."""
    from tqdm import tqdm

    chosen = tqdm(samples, desc="evaluate", unit="img", disable=not progress)
    result = {}
    if "photos" in parts:
        result["metrics"], result["per_image"] = evaluate_photos(predict, chosen, options)
    runners = {"screens": evaluate_screens, "no_person": evaluate_no_person, "main_subject": evaluate_main_subject}
    for part, runner in runners.items():
        if part in parts:
            result[part], result[f"{part}_per_image"] = runner(predict, samples)
    return result


def write_report(result: dict, samples: list[dataset.Sample], out_dir: Path, predict: Predict, cases: int = 6) -> None:
    """evaluation.json, and with the [train] extra's matplotlib: iou_histogram.png and worst_best.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "evaluation.json").write_text(json.dumps(result, indent=2))
    try:
        from training.report import case_grid, plot_iou_histogram
    except ImportError:
        print("pictures skipped: install matplotlib (the [train] extra) for them")
        return
    records = result.get("per_image", [])
    if not records:
        return
    plot_iou_histogram([r["iou"] for r in records], out_dir / "iou_histogram.png")
    by_stem = {s.stem: s for s in samples}
    ranked = sorted(records, key=lambda r: r["iou"])
    chosen = ranked[:cases] + ranked[-cases:] if len(ranked) > 2 * cases else ranked
    rows = []
    for record in chosen:
        sample = by_stem[record["stem"]]
        data = sample.image.read_bytes()
        served = predict(data, {})
        rows.append(
            (record["stem"], decode_image(data, MAX_EVAL_PIXELS), load_truth(sample.mask), served.alpha / 255.0, record["iou"])
        )
    case_grid(rows, out_dir / "worst_best.png")
    _main_subject_pictures(result, by_stem, out_dir / "main_subject.png", predict)


def _main_subject_pictures(result: dict, by_stem: dict, out_png: Path, predict: Predict, cell: int = 200) -> None:
    """One row per photo with several people: the photo, everyone kept, subject=main."""
    records = result.get("main_subject_per_image", [])[:8]
    if not records:
        return
    sheet = Image.new("RGB", (3 * cell, len(records) * cell), "white")
    for row, record in enumerate(records):
        data = by_stem[record["stem"]].image.read_bytes()
        photo = decode_image(data, MAX_EVAL_PIXELS)
        tiles = [photo] + [Image.fromarray(predict(data, options).alpha) for options in ({}, {"subject": "main"})]
        for column, tile in enumerate(tiles):
            tile = tile.convert("RGB")
            tile.thumbnail((cell, cell))
            sheet.paste(tile, (column * cell, row * cell))
    sheet.save(out_png)


def segmenter_from_proto(proto) -> Segmenter:
    """A CPU Segmenter over an in-memory onnx.ModelProto (onnxruntime reads the file once, then it can go)."""
    import tempfile

    import onnx

    with tempfile.TemporaryDirectory(prefix="cutout-eval-") as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(proto, path)
        return Segmenter(path, provider="cpu")


def format_table(metrics: dict) -> str:
    rows = [
        (k, f"{v:.4f}" if isinstance(v, float) and "latency" not in k else f"{v:.1f}" if isinstance(v, float) else str(v))
        for k, v in metrics.items()
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def run(
    model: str | None,
    url: str | None,
    data: str,
    split: str = "val",
    limit: int | None = None,
    parts: Iterable[str] | None = None,
    out: str | None = None,
    provider: str = "cpu",
    threads: int = 0,
    api_key: str | None = None,
    options: dict | None = None,
) -> dict:
    """The `evaluate` command: one model file (or a running service) on one split; the report in `out`."""
    splits = dataset.discover(data)
    samples = dataset.validate(getattr(splits, split), split)[:limit]
    if url:
        predict, source = url_predict(url, api_key), url
    else:
        predict, source = segmenter_predict(Segmenter(model, provider, intra_op_threads=threads)), Path(model).name
    result = {
        "model": source,
        "split": split,
        "options": options or {},
        **evaluate(predict, samples, parts or PARTS, options=options),
    }
    if out:
        write_report(result, samples, Path(out), predict)
    return result


def print_result(result: dict) -> None:
    for part in ("metrics", *PARTS[1:]):
        if part in result:
            print(f"[{'photos' if part == 'metrics' else part}]")
            print(format_table(result[part]))
