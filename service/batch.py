"""Batch processing of files and folders, through the same code path as the API."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import ValidationError
from tqdm import tqdm

from service.imaging import ImageError, decode_image, encode_image
from service.removal import CutoutOptions, MaskOptions, NoPersonFound, OptionError, render_cutout, render_mask, segment
from service.segmenter import ModelLoadError, open_segmenter_from
from service.settings import Settings

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
LEAST_CONFIDENT_SHOWN = 10


def list_inputs(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
    return [path]


def _options(args) -> tuple[MaskOptions, str]:
    shared = {"threshold": args.threshold, "max_size": args.max_size, "refine": args.refine}
    shared |= {"subject": args.subject, "on_empty": args.on_empty}
    given = {k: v for k, v in shared.items() if v is not None}
    if args.mask:
        return MaskOptions(**given), ".png"
    if args.decontaminate is not None:
        given["decontaminate"] = args.decontaminate
    options = CutoutOptions(**given, format=args.format, bg_color=args.bg_color, crop=args.crop, crop_margin=args.crop_margin)
    return options, "." + options.format.replace("jpeg", "jpg")


def _settings(args) -> Settings:
    if args.model:  # an explicit --model is served as given, without the GPU file
        return Settings(model_path=args.model)
    return Settings()


def _summary(confidences: dict[str, float]) -> str:
    ranked = sorted(confidences.items(), key=lambda item: item[1])[:LEAST_CONFIDENT_SHOWN]
    return "least confident first:\n" + "\n".join(f"  {score:.3f}  {name}" for name, score in ranked)


def run_batch(args) -> int:
    try:
        options, suffix = _options(args)
        settings = _settings(args)
        segmenter = open_segmenter_from(settings)
    except (ValidationError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    inputs = list_inputs(args.input)
    if not inputs:
        print(f"error: no images found in {args.input}", file=sys.stderr)
        return 2
    args.output.mkdir(parents=True, exist_ok=True)
    failures, confidences = 0, {}
    for path in tqdm(inputs, desc="remove", unit="img"):
        try:
            photo = decode_image(path.read_bytes(), settings.max_pixels)
            segmentation = segment(segmenter, photo, options)
            if args.mask:
                result, fmt = render_mask(segmentation, options), "png"
            else:
                result, fmt = render_cutout(photo, segmentation, options), options.format
            (args.output / (path.stem + suffix)).write_bytes(encode_image(result.image, fmt))
            confidences[path.name] = result.confidence
        except (ImageError, OptionError, NoPersonFound, OSError) as exc:
            failures += 1
            tqdm.write(f"skipped {path.name}: {exc}")
    print(f"{len(inputs) - failures} written to {args.output}, {failures} failed")
    if confidences:
        print(_summary(confidences))
    return 1 if failures else 0
