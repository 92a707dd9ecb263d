"""docs/before-after.png: a photo next to the shipped model's cutout on a checkerboard (for the README).

python -m scripts.make_before_after PHOTO [PHOTO ...] [--out docs/before-after.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from service import Segmenter, remove_background
from service.settings import DEFAULT_MODEL

ROW_HEIGHT = 260


def checkerboard(size: tuple[int, int], square: int = 12) -> Image.Image:
    board = Image.new("RGBA", size, (255, 255, 255, 255))
    grey = Image.new("RGBA", (square, square), (215, 215, 215, 255))
    for y in range(0, size[1], square):
        for x in range((y // square) % 2 * square, size[0], 2 * square):
            board.paste(grey, (x, y))
    return board


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", nargs="+", type=Path)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, default=Path("docs/before-after.png"))
    args = parser.parse_args()
    segmenter = Segmenter(args.model, provider="cpu")
    rows = []
    for path in args.photos:
        photo = Image.open(path).convert("RGB")
        photo = photo.resize((round(photo.width * ROW_HEIGHT / photo.height), ROW_HEIGHT), Image.LANCZOS)
        cutout = remove_background(segmenter, photo)
        row = Image.new("RGBA", (photo.width * 2 + 10, ROW_HEIGHT), (255, 255, 255, 255))
        row.paste(photo, (0, 0))
        row.alpha_composite(Image.alpha_composite(checkerboard(photo.size), cutout), (photo.width + 10, 0))
        rows.append(row)
    sheet = Image.new("RGBA", (max(r.width for r in rows), sum(r.height + 10 for r in rows) - 10), (255, 255, 255, 255))
    y = 0
    for row in rows:
        sheet.paste(row, (0, y))
        y += row.height + 10
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.convert("RGB").save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
