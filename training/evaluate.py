"""Measure a model exactly as users get it: the service's own decode -> fit -> run -> resize back path.

`python -m training evaluate MODEL.onnx --data DIR` runs the file through service.Segmenter;
`--url http://host:port` sends every photo to a running service's POST /mask instead.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from PIL import Image, ImageFilter
from tqdm import tqdm

from service.imaging import decode_image
from service.removal import DEFAULT_REFINE, predict_probability
from service.segmenter import Segmenter
from training import dataset
from training.metrics import THRESHOLD, confusion_counts, scores_from_counts

BOUNDARY_TOLERANCE_PX = 2
MAX_EVAL_PIXELS = 100_000_000


def load_truth(path: Path) -> np.ndarray:
    """Mask file -> float 0..1 (accepts 0/1, 0/255 and soft masks)."""
    mask = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    return mask / 255.0 if mask.max() > 1 else mask


def _boundary(binary: np.ndarray) -> np.ndarray:
    """Pixels of the mask that touch the outside (mask minus its 3x3 erosion)."""
    image = Image.fromarray(binary.astype(np.uint8) * 255)
    eroded = np.asarray(image.filter(ImageFilter.MinFilter(3))) > 0
    return binary & ~eroded


def _dilate(binary: np.ndarray, radius: int) -> np.ndarray:
    image = Image.fromarray(binary.astype(np.uint8) * 255)
    return np.asarray(image.filter(ImageFilter.MaxFilter(2 * radius + 1))) > 0


def boundary_counts(pred: np.ndarray, truth: np.ndarray, tolerance: int = BOUNDARY_TOLERANCE_PX) -> tuple[int, int, int, int]:
    """Boundary pixel counts: (predicted ones near a true boundary, all predicted ones,
    true ones near a predicted boundary, all true ones)."""
    pb, tb = _boundary(pred >= THRESHOLD), _boundary(truth >= THRESHOLD)
    return int(np.sum(pb & _dilate(tb, tolerance))), int(pb.sum()), int(np.sum(tb & _dilate(pb, tolerance))), int(tb.sum())


def boundary_f(pred: np.ndarray, truth: np.ndarray, tolerance: int = BOUNDARY_TOLERANCE_PX) -> float:
    """Boundary F-score: precision/recall of boundary pixels matched within `tolerance` pixels."""
    hit_p, n_p, hit_t, n_t = boundary_counts(pred, truth, tolerance)
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


def summarize(records: list[dict]) -> dict:
    tp, fp, fn = (sum(r[k] for r in records) for k in ("tp", "fp", "fn"))
    latencies = np.array([r["latency_ms"] for r in records])
    return {
        "images": len(records),
        "mean_iou": float(np.mean([r["iou"] for r in records])),
        **scores_from_counts(tp, fp, fn),
        "boundary_f": float(np.mean([r["boundary_f"] for r in records])),
        "latency_p50_ms": float(np.percentile(latencies, 50)),
        "latency_p95_ms": float(np.percentile(latencies, 95)),
    }


def run_evaluation(predict: Callable[[bytes], np.ndarray], samples: list[dataset.Sample], progress: bool = True) -> dict:
    """predict: file bytes -> probability map at the photo's size (after EXIF orientation)."""
    records = []
    for sample in tqdm(samples, desc="evaluate", unit="img", disable=not progress):
        data = sample.image.read_bytes()
        started = time.perf_counter()
        prob = predict(data)
        latency_ms = (time.perf_counter() - started) * 1000
        truth = load_truth(sample.mask)
        if prob.shape != truth.shape:
            raise ValueError(f"{sample.stem}: prediction {prob.shape} vs mask {truth.shape}")
        records.append({"stem": sample.stem, "latency_ms": latency_ms, **score_image(prob, truth)})
    return {"metrics": summarize(records), "per_image": records}


def evaluate_segmenter(
    segmenter: Segmenter, samples: list[dataset.Sample], refine: bool = DEFAULT_REFINE, progress: bool = True
) -> dict:
    def predict(data: bytes) -> np.ndarray:
        return predict_probability(segmenter, decode_image(data, MAX_EVAL_PIXELS), refine)

    return run_evaluation(predict, samples, progress)


def evaluate_url(url: str, samples: list[dataset.Sample], progress: bool = True, api_key: str | None = None) -> dict:
    """Through a running service: POST /mask with default options, soft mask back."""
    import io

    import httpx

    headers = {"X-API-Key": api_key} if api_key else {}
    with httpx.Client(base_url=url, timeout=120, headers=headers) as client:

        def predict(data: bytes) -> np.ndarray:
            response = client.post("/mask", files={"file": ("image.jpg", data, "image/jpeg")})
            response.raise_for_status()
            return np.asarray(Image.open(io.BytesIO(response.content)).convert("L"), dtype=np.float32) / 255.0

        return run_evaluation(predict, samples, progress)


def segmenter_from_proto(proto: onnx.ModelProto) -> Segmenter:
    """A CPU Segmenter over an in-memory model (onnxruntime reads the file once, then it can go)."""
    with tempfile.TemporaryDirectory(prefix="cutout-eval-") as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(proto, path)
        return Segmenter(path, provider="cpu")


def write_report(
    result: dict, samples: list[dataset.Sample], out_dir: Path, predict_cases: Callable[[bytes], np.ndarray], cases: int = 6
) -> None:
    """evaluation.json, iou_histogram.png and worst_best.png (image, truth, prediction, overlay)."""
    from training.report import case_grid, plot_iou_histogram

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "evaluation.json").write_text(json.dumps(result, indent=2))
    records = result["per_image"]
    plot_iou_histogram([r["iou"] for r in records], out_dir / "iou_histogram.png")
    by_stem = {s.stem: s for s in samples}
    ranked = sorted(records, key=lambda r: r["iou"])
    chosen = ranked[:cases] + ranked[-cases:] if len(ranked) > 2 * cases else ranked
    rows = []
    for record in chosen:
        sample = by_stem[record["stem"]]
        data = sample.image.read_bytes()
        rows.append(
            (record["stem"], decode_image(data, MAX_EVAL_PIXELS), load_truth(sample.mask), predict_cases(data), record["iou"])
        )
    case_grid(rows, out_dir / "worst_best.png")


def format_table(metrics: dict) -> str:
    rows = [
        (k, f"{v:.4f}" if isinstance(v, float) and "latency" not in k else f"{v:.1f}" if isinstance(v, float) else str(v))
        for k, v in metrics.items()
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
