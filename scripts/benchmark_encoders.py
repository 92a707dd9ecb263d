"""File size against time for the ways a cutout can be encoded, on a real cutout of a mosaic photo.

    python -m scripts.benchmark_encoders [--size 4032x3024] [--repeats 3]

Prints, per encoder: the best of `repeats` timings in-process and the file size. The cutout is what
`/remove-background` makes with default options (RGBA, edge colours estimated).
"""

from __future__ import annotations

import argparse
import io
import json
import time
import zlib

from PIL import Image

from scripts.loadgen import photo_mosaic
from service import png, removal
from service.imaging import decode_image, encode_image
from service.segmenter import open_segmenter_from
from service.settings import Settings


def pillow(image: Image.Image, **save_options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, **save_options)
    return buffer.getvalue()


def ours_with_zlib(image: Image.Image) -> bytes:
    library = png.deflate_lib
    png.deflate_lib = zlib
    try:
        return png.encode_png(image)
    finally:
        png.deflate_lib = library


ENCODERS = {
    "png (service: ISA-L level 1, blocks on every core)": lambda image: encode_image(image, "png"),
    "png (same blocks, zlib level 1)": ours_with_zlib,
    "png (Pillow, compress_level=1)": lambda image: pillow(image, format="PNG", compress_level=1),
    "webp (service: lossy, quality 90, alpha kept)": lambda image: encode_image(image, "webp"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="4032x3024", help="photo size, WIDTHxHEIGHT")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))

    segmenter = open_segmenter_from(Settings())
    photo = decode_image(photo_mosaic(width, height), width * height)
    options = removal.CutoutOptions()
    segmentation = removal.segment(segmenter, photo, options)
    cutout = removal.render_cutout(photo, segmentation, options).image
    cropped = removal.render_cutout(photo, segmentation, removal.CutoutOptions(crop=True)).image
    encoders = {**ENCODERS, "png of the cropped cutout (crop=true)": lambda _: encode_image(cropped, "png")}
    report = {"cutout": f"{width}x{height} RGBA", "cropped": f"{cropped.width}x{cropped.height}"}
    for name, encode in encoders.items():
        timings = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            data = encode(cutout)
            timings.append(time.perf_counter() - started)
        report[name] = {"ms": round(min(timings) * 1000, 1), "mb": round(len(data) / 2**20, 2)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
