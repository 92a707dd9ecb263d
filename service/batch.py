"""Batch processing of files and folders, through the same code path as the API."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import ValidationError
from tqdm import tqdm

from service.imaging import ImageError, decode_image, encode_image
from service.removal import CutoutOptions, MaskOptions, OptionError, predict_probability, render_cutout, render_mask
from service.segmenter import ModelLoadError, open_segmenter
from service.settings import Settings

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def list_inputs(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
    return [path]


def run_batch(args) -> int:
    settings = Settings()
    given = {
        k: v for k, v in {"threshold": args.threshold, "max_size": args.max_size, "refine": args.refine}.items() if v is not None
    }
    try:
        if args.mask:
            options, suffix = MaskOptions(**given), ".png"
        else:
            options = CutoutOptions(
                **given, format=args.format, bg_color=args.bg_color, crop=args.crop, crop_margin=args.crop_margin
            )
            suffix = "." + options.format.replace("jpeg", "jpg")
        gpu_model = None if args.model else settings.gpu_model  # an explicit --model is served as given
        segmenter = open_segmenter(args.model or settings.model_path, gpu_model, settings.provider, settings.intra_op_threads)
    except (ValidationError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    inputs = list_inputs(args.input)
    if not inputs:
        print(f"error: no images found in {args.input}", file=sys.stderr)
        return 2
    args.output.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in tqdm(inputs, desc="remove", unit="img"):
        try:
            photo = decode_image(path.read_bytes(), settings.max_pixels)
            prob = predict_probability(segmenter, photo, options.refine)
            if args.mask:
                result, fmt = render_mask(prob, options), "png"
            else:
                result, fmt = render_cutout(photo, prob, options), options.format
            (args.output / (path.stem + suffix)).write_bytes(encode_image(result.image, fmt))
        except (ImageError, OptionError, OSError) as exc:
            failures += 1
            tqdm.write(f"skipped {path.name}: {exc}")
    print(f"{len(inputs) - failures} written to {args.output}, {failures} failed")
    return 1 if failures else 0
