"""`python -m service` serves the API; `python -m service remove IN OUT` processes files in batch."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def serve(args) -> int:
    import uvicorn

    from service.app import create_app
    from service.segmenter import ModelLoadError
    from service.settings import Settings

    try:
        app = create_app(Settings())
        # timeout_graceful_shutdown: on SIGTERM, in-flight requests get this long to finish.
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=30)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def remove(args) -> int:
    from service.batch import run_batch

    return run_batch(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service", description="Cutout background-removal service")
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"), help="address to listen on (env HOST)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")), help="port (env PORT)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("remove", help="remove backgrounds from a file or a folder of images")
    p.add_argument("input", type=Path, help="an image file or a folder of images")
    p.add_argument("output", type=Path, help="folder for the results")
    p.add_argument("--model", type=Path, help="ONNX model (default: CUTOUT_MODEL_PATH or the shipped model)")
    p.add_argument("--mask", action="store_true", help="write masks instead of cutouts")
    p.add_argument("--format", choices=["png", "webp", "jpeg"], default="png")
    p.add_argument("--bg-color", help="#RRGGBB or #RRGGBBAA background")
    p.add_argument("--threshold", type=float, help="hard alpha at this probability")
    p.add_argument("--crop", action="store_true", help="crop to the subject")
    p.add_argument("--crop-margin", type=int, default=0)
    p.add_argument("--max-size", type=int, help="longest side of the output")
    p.add_argument("--refine", action=argparse.BooleanOptionalAction, default=None, help="edge-aware refinement (default: on)")
    p.add_argument(
        "--subject",
        choices=["people", "all", "main"],
        help="the people without stray blobs (default), every region, or the main person",
    )
    p.add_argument("--on-empty", choices=["empty", "error"], help="no person found: write an empty result (default) or skip")
    p.add_argument(
        "--decontaminate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="estimate the person's colour in edge pixels (default: on)",
    )
    args = parser.parse_args(argv)
    return remove(args) if args.command == "remove" else serve(args)


if __name__ == "__main__":
    raise SystemExit(main())
