"""One markdown table from several `evaluate --out` reports: the model card's rows, made by a command."""

from __future__ import annotations

import json
from pathlib import Path

HEADER = (
    "| candidate | mean IoU | boundary F | screens edge / bleed | false blobs | mean false area | Spearman |\n"
    "|---|---|---|---|---|---|---|"
)


def read_evaluation(path: str | Path) -> dict:
    """An evaluation.json, or the report folder that holds one."""
    path = Path(path)
    if path.is_dir():
        path = path / "evaluation.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass a folder written by `python -m training evaluate --out`")
    return json.loads(path.read_text())


def _row(name: str, evaluation: dict) -> str:
    photos = evaluation.get("metrics") or {}
    screens = evaluation.get("screens") or {}
    no_person = evaluation.get("no_person") or {}

    def figure(section: dict, key: str, spec: str) -> str:
        return format(section[key], spec) if section.get(key) is not None else "-"

    if no_person.get("crops"):
        crops = no_person["crops"]
        blobs = round(no_person["false_blob_share"] * crops)
        blob_cell = f"{blobs} of {crops} ({no_person['false_blob_share']:.1%})"
    else:
        blob_cell = "-"
    return (
        f"| {name} | {figure(photos, 'mean_iou', '.4f')} | {figure(photos, 'boundary_f', '.4f')} "
        f"| {figure(screens, 'edge_error', '.2f')} / {figure(screens, 'colour_bleed', '.2f')} | {blob_cell} "
        f"| {figure(no_person, 'mean_false_area', '.2%')} | {figure(photos, 'confidence_spearman', '.3f')} |"
    )


def comparison_table(reports: list[tuple[str, dict]]) -> str:
    """One row per (name, evaluation), in the order given; a part the evaluation skipped (`--parts`) shows as '-'."""
    return "\n".join([HEADER, *(_row(name, evaluation) for name, evaluation in reports)])
