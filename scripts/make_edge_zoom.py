"""docs/edge-zoom.png: a hair edge at 3x zoom on a contrasting colour, the 0.1.0 way next to today's.

python -m scripts.make_edge_zoom [PHOTO] [--colour "#1d4ed8"] [--out docs/edge-zoom.png]

"0.1.0" is reproduced with today's code: its alpha curve (probability 0.05..0.95) and no foreground
colour estimation; "now" is the service's default. Both use the shipped model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from service import Segmenter
from service.compose import parse_color
from service.matte import estimate_foreground, shape_alpha
from service.refine import full_resolution_alpha
from service.settings import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
ZOOM = 3
WINDOW = (150, 100)  # photo pixels around the top of the head


def on_colour(rgb: np.ndarray, alpha: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    a = alpha[..., None].astype(np.float32) / 255
    return np.round(rgb * a + np.array(colour, np.float32) * (1 - a)).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photo", nargs="?", type=Path, default=ROOT / "tests/data/photos/pexels-photo-665321.jpg")
    parser.add_argument("--colour", default="#1d4ed8", help="background colour, contrasting with the old one")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/edge-zoom.png")
    args = parser.parse_args()

    segmenter = Segmenter(DEFAULT_MODEL, provider="cpu")
    photo = Image.open(args.photo).convert("RGB")
    rgb, small = np.asarray(photo), segmenter.predict_small(photo)
    size, colour = segmenter.info.input_size, parse_color(args.colour)[:3]
    old_alpha = full_resolution_alpha(photo, small, size, lambda p: shape_alpha(p, 0.05, 0.95), refine=True)
    new_alpha = full_resolution_alpha(photo, small, size, shape_alpha, refine=True)
    old = on_colour(rgb, old_alpha, colour)
    new = on_colour(estimate_foreground(rgb, new_alpha), new_alpha, colour)

    rows = np.flatnonzero((new_alpha >= 128).any(axis=1))
    top = int(rows[0]) if rows.size else 0
    cols = np.flatnonzero(new_alpha[top + 5] >= 128) if rows.size else np.array([rgb.shape[1] // 2])
    centre = int(cols.mean()) if cols.size else rgb.shape[1] // 2
    left = int(np.clip(centre - WINDOW[0] // 2, 0, rgb.shape[1] - WINDOW[0]))
    upper = int(np.clip(top - WINDOW[1] // 4, 0, rgb.shape[0] - WINDOW[1]))
    box = (left, upper, left + WINDOW[0], upper + WINDOW[1])
    tiles = [Image.fromarray(p).crop(box).resize((WINDOW[0] * ZOOM, WINDOW[1] * ZOOM), Image.NEAREST) for p in (old, new)]
    label_height = 22
    sheet = Image.new("RGB", (2 * tiles[0].width + 10, tiles[0].height + label_height), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (tile, label) in enumerate(
        zip(tiles, ("0.1.0: soft alpha, photo colours", "now: shaped alpha, estimated colours"), strict=True)
    ):
        sheet.paste(tile, (index * (tile.width + 10), label_height))
        draw.text((index * (tile.width + 10) + 4, 4), label, fill=(0, 0, 0))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
