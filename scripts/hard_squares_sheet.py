"""A contact sheet of the squares a `mine-negatives` file ranks hardest, numbered, to look at before training.

python -m scripts.hard_squares_sheet HARD.json --data ../shared/data/people_segmentation --out sheet.png

A square the model calls person may hold a person the mask leaves out (a reflection, people far behind): such a
photo belongs in training/unlabeled_people.txt, not among the "no person here" crops. The numbers follow the
printed list (hardest first).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw

from training import dataset
from training.hard_negatives import box_pixels
from training.person_free import FALSE_BLOB_SHARE

TILE = 160
COLUMNS = 8


def hardest(records: list[dict]) -> list[dict]:
    return sorted((r for r in records if r["false_area"] > FALSE_BLOB_SHARE), key=lambda r: -r["false_area"])


def contact_sheet(records: list[dict], photos: dict[str, Path]) -> Image.Image:
    rows = max(1, -(-len(records) // COLUMNS))
    sheet = Image.new("RGB", (COLUMNS * TILE, rows * TILE))
    draw = ImageDraw.Draw(sheet)
    for number, record in enumerate(records):
        with Image.open(photos[record["stem"]]) as photo:
            square = photo.convert("RGB").crop(box_pixels(record["box"], *photo.size)).resize((TILE, TILE))
        corner = ((number % COLUMNS) * TILE, (number // COLUMNS) * TILE)
        sheet.paste(square, corner)
        draw.text((corner[0] + 3, corner[1] + 3), str(number), fill=(255, 255, 0))
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mined", type=Path, help="a `python -m training mine-negatives` file")
    parser.add_argument("--data", required=True, help="the dataset it was mined on (Kaggle layout)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    records = hardest(json.loads(args.mined.read_text())["records"])
    photos = {s.stem: s.image for s in dataset.discover(args.data).train}
    contact_sheet(records, photos).save(args.out)
    for number, record in enumerate(records):
        print(f"{number:3d}  {record['false_area']:.3f}  {record['stem']}")
    print(f"{args.out}: {len(records)} squares")


if __name__ == "__main__":
    main()
