"""Stamp a model with its measured validation metrics and write the machine-readable model card.

The ONNX metadata and models/<name>.json carry the same numbers, taken from one evaluation report,
so the card can never drift from the file (tests/test_shipped_model.py checks it).
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx


def stamp(model_path: Path, evaluation: dict, extra: dict | None = None) -> dict:
    """Write the evaluation's metrics into the model's metadata; return the card as a dict.

    Stamping is the shipping step: the model takes the name of the file it ships as."""
    proto = onnx.load(str(model_path))
    meta = {p.key: p.value for p in proto.metadata_props}
    meta["cutout.name"] = model_path.stem
    metrics = {**evaluation["metrics"], "split": evaluation.get("split", "val"), "refine": evaluation.get("refine")}
    meta["cutout.val_metrics"] = json.dumps(metrics)
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
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
        **(extra or {}),
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m training.card", description=__doc__)
    parser.add_argument("model", type=Path)
    parser.add_argument("--evaluation", type=Path, required=True, help="evaluation.json from `python -m training evaluate --out`")
    parser.add_argument("--extra", type=Path, help="JSON merged into the card (latency table, runs, commands)")
    args = parser.parse_args(argv)
    extra = json.loads(args.extra.read_text()) if args.extra else None
    card = stamp(args.model, json.loads(args.evaluation.read_text()), extra)
    out = args.model.with_suffix(".json")
    out.write_text(json.dumps(card, indent=2) + "\n")
    print(f"stamped {args.model} and wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
