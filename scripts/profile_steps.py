"""Time and memory of each step of a cutout, in-process, for 0.7 / 3 / 12 / 24 MP mosaics of real photos.

    python -m scripts.profile_steps [--sizes 0.7 3 12 24] [--checkout DIR]

Steps: decode (upload bytes -> RGB image), segment (model + full-resolution alpha), render (RGBA with
edge colours), encode (PNG). Per step: best-of-2 milliseconds, and the process's peak RSS growth over its
memory before the request (Linux VmHWM, reset before each step). Each size runs in a fresh process.
`--checkout` runs another checkout's code (e.g. the one before a change), for a before/after table from one session.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def profile(sizes: dict[str, tuple[int, int]]) -> dict:
    """sizes: name -> (width, height); the checkout profiled need not have scripts.benchmark_large."""
    from scripts.loadgen import photo_mosaic, rss_mb
    from service import removal
    from service.imaging import decode_image, encode_image
    from service.segmenter import open_segmenter_from
    from service.settings import Settings

    segmenter = open_segmenter_from(Settings())
    options = removal.CutoutOptions()
    report = {}
    for size, (width, height) in sizes.items():
        body = photo_mosaic(width, height)
        timings: dict[str, list[float]] = {}
        peaks: dict[str, float] = {}
        for _ in range(2):
            base = rss_mb(os.getpid())[0]
            values: dict = {"body": body}
            steps = {
                "decode": lambda v: decode_image(v["body"], 10**9),
                "segment": lambda v: removal.segment(segmenter, v["decode"], options),
                "render": lambda v: removal.render_cutout(v["decode"], v["segment"], options).image,
                "encode": lambda v: encode_image(v["render"], "png"),
            }
            for name, step in steps.items():
                _reset_peak()
                started = time.perf_counter()
                values[name] = step(values)
                timings.setdefault(name, []).append((time.perf_counter() - started) * 1000)
                peaks[name] = max(peaks.get(name, 0.0), rss_mb(os.getpid())[1] - base)
                if name == "render":  # as the service does: the photo and its alpha go before encoding
                    del values["decode"], values["segment"]
            del values
        report[f"{size}MP"] = {
            name: {"ms": round(min(times), 1), "peak_growth_mb": round(peaks[name], 1)} for name, times in timings.items()
        }
    return report


def _profile_in_fresh_process(size: str, checkout: Path | None) -> dict:
    """One size in a new process, so memory freed by an earlier photo cannot hide the next one's growth.
    With a checkout: its packages (service, scripts.loadgen), this file's profile()."""
    from scripts.benchmark_large import SIZES

    code = (
        f"import sys, json, importlib.util; sys.path.insert(0, {str(checkout or ROOT)!r}); "
        f"spec = importlib.util.spec_from_file_location('profile_steps', {__file__!r}); "
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
        f"print(json.dumps(module.profile({{{size!r}: {SIZES[size]!r}}})))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=checkout or ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from scripts.benchmark_large import SIZES  # here, not at the top: a checkout's process runs this file too

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES), help="megapixels")
    parser.add_argument("--checkout", type=Path, help="profile this checkout's code instead")
    args = parser.parse_args()
    report = {"checkout": str(args.checkout or ROOT)}
    for size in args.sizes:
        report |= _profile_in_fresh_process(size, args.checkout)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
