"""Stamp a model with its measured validation metrics and write the machine-readable model card.

The ONNX metadata and models/<name>.json carry the same numbers, taken from one evaluation report,
so the card can never drift from the file (tests/test_shipped_model.py checks it).
"""

from __future__ import annotations

import json
from pathlib import Path

from service import __version__
from service.segmenter import MIRRORED_ASPECT, TWO_VIEWS_DESCRIPTION


def set_metadata(proto, entries: dict[str, str]) -> None:
    """Replace the ONNX file's metadata_props with `entries` (the one place metadata is written)."""
    del proto.metadata_props[:]
    for key, value in entries.items():
        proto.metadata_props.add(key=key, value=value)


def stamp(model_path: Path, evaluation: dict, extra: dict | None = None) -> dict:
    """Write the evaluation's metrics into the model's metadata; return the card as a dict.

    Stamping is the shipping step: the model takes the name of the file it ships as, the version of the release
    it ships in (the export may have run before the version was bumped), and, for a file the service runs on two
    views, how this service combines them (a release may change that without a new export)."""
    import onnx

    proto = onnx.load(str(model_path))
    meta = {p.key: p.value for p in proto.metadata_props}
    meta["cutout.name"] = model_path.stem
    meta["cutout.version"] = __version__
    if MIRRORED_ASPECT in meta.get("cutout.views", "").split(","):
        meta["cutout.tta"] = TWO_VIEWS_DESCRIPTION
    metrics = {**evaluation["metrics"], "split": evaluation.get("split", "val"), "refine": evaluation.get("refine")}
    meta["cutout.val_metrics"] = json.dumps(metrics)
    set_metadata(proto, meta)
    onnx.save(proto, str(model_path))
    return {
        "name": meta["cutout.name"],
        "file": model_path.name,
        "bytes": model_path.stat().st_size,
        "input_size": int(meta["cutout.input_size"]),
        "precision": meta["cutout.precision"],
        "fit": meta["cutout.fit"],
        "version": meta["cutout.version"],
        "val_metrics": metrics,
        "training_config": json.loads(meta["cutout.training_config"]),
        "training_data": meta["cutout.training_data"],
        # What else the evaluation measured through the served path (edges, no person, main subject).
        **{part: evaluation[part] for part in ("screens", "no_person", "main_subject") if part in evaluation},
        **(extra or {}),
    }


def write_card(model: Path, evaluation: Path, extra: Path | None = None) -> Path:
    card = stamp(model, json.loads(evaluation.read_text()), json.loads(extra.read_text()) if extra else None)
    out = model.with_suffix(".json")
    out.write_text(json.dumps(card, indent=2) + "\n")
    return out
