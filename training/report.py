"""Pictures people would rather look at than read: training curves, evaluation grids, IoU histograms."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def plot_history(history_csv: Path, out_png: Path) -> None:
    with open(history_csv) as fh:
        rows = list(csv.DictReader(fh))
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, (loss_ax, iou_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("loss", "val_loss"):
        if rows and key in rows[0]:
            loss_ax.plot(epochs, [float(r[key]) for r in rows], label=key, marker="o")
    for key in ("iou", "val_iou", "val_pooled_iou"):
        if rows and key in rows[0]:
            iou_ax.plot(epochs, [float(r[key]) for r in rows], label=key, marker="o")
    loss_ax.set(title="loss", xlabel="epoch")
    iou_ax.set(title="person IoU (threshold 0.5)", xlabel="epoch")
    for ax in (loss_ax, iou_ax):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    plt.close(fig)


def plot_iou_histogram(ious: list[float], out_png: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(ious, bins=np.linspace(0, 1, 41), color="#3b7dd8")
    ax.axvline(float(np.mean(ious)), color="k", linestyle="--", label=f"mean {np.mean(ious):.3f}")
    ax.set(title=f"per-image IoU ({len(ious)} images)", xlabel="IoU", ylabel="images")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    plt.close(fig)


def overlay(image: Image.Image, prob: np.ndarray) -> Image.Image:
    """The photo with the predicted person tinted green and the rest dimmed."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    alpha = prob[..., None]
    tinted = rgb * (0.35 + 0.65 * alpha) + alpha * np.array([0, 90, 0], dtype=np.float32)
    return Image.fromarray(np.clip(tinted, 0, 255).astype(np.uint8))


def case_grid(cases: list[tuple[str, Image.Image, np.ndarray, np.ndarray, float]], out_png: Path, cell: int = 160) -> None:
    """One row per case: image, ground truth, prediction, overlay; the IoU is written on the row."""
    from PIL import ImageDraw

    grid = Image.new("RGB", (4 * cell, max(1, len(cases)) * cell), "white")
    draw = ImageDraw.Draw(grid)
    for row, (name, image, truth, prob, iou) in enumerate(cases):
        tiles = [
            image.convert("RGB"),
            Image.fromarray((truth * 255).astype(np.uint8)).convert("RGB"),
            Image.fromarray((prob * 255).astype(np.uint8)).convert("RGB"),
            overlay(image, prob),
        ]
        for col, tile in enumerate(tiles):
            tile = tile.copy()
            tile.thumbnail((cell, cell))
            grid.paste(tile, (col * cell, row * cell))
        draw.text((4, row * cell + 4), f"IoU {iou:.3f} {name[:28]}", fill=(255, 0, 0))
    grid.save(out_png)
