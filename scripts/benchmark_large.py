"""Large photos end to end: for 0.7 / 3 / 12 / 24 MP mosaics of real photos, over real HTTP.

    python -m scripts.benchmark_large [--requests 3] [--sizes 0.7 3 12 24] [--format png] [--checkout DIR]

Prints per size: p50 latency of sequential requests, the server's peak RSS with 1 and with 2 concurrent
requests (peak reset between measurements), the latencies of the 2 concurrent ones, and the output size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path

import httpx

from scripts.loadgen import ROOT, photo_mosaic, rss_mb, running_server

SIZES = {"0.7": (1024, 683), "3": (2000, 1500), "12": (4032, 3024), "24": (6048, 4032)}


def reset_peak_rss(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # Linux: VmHWM starts again from the current RSS


def post(url: str, body: bytes, params: dict, out: dict | None = None) -> tuple[float, int]:
    started = time.perf_counter()
    response = httpx.post(
        f"{url}/remove-background", params=params, content=body, headers={"Content-Type": "image/jpeg"}, timeout=300
    )
    response.raise_for_status()
    result = ((time.perf_counter() - started) * 1000, len(response.content))
    if out is not None:
        out[threading.get_ident()] = result[0]
    return result


def measure(url: str, pid: int, body: bytes, requests: int, params: dict) -> dict:
    post(url, body, params)  # warm-up
    timings = [post(url, body, params) for _ in range(requests)]
    reset_peak_rss(pid)
    post(url, body, params)
    one_peak = rss_mb(pid)[1]
    reset_peak_rss(pid)
    latencies: dict = {}
    pair = [threading.Thread(target=post, args=(url, body, params, latencies)) for _ in range(2)]
    for thread in pair:
        thread.start()
    for thread in pair:
        thread.join()
    return {
        "p50_ms": round(statistics.median(t for t, _ in timings), 1),
        "output_mb": round(timings[0][1] / 2**20, 2),
        "peak_rss_mb_1_request": round(one_peak, 1),
        "peak_rss_mb_2_concurrent": round(rss_mb(pid)[1], 1),
        "latencies_ms_2_concurrent": sorted(round(v, 1) for v in latencies.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3, help="sequential requests per size, after one warm-up")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES), help="megapixels")
    parser.add_argument("--format", default="png", choices=["png", "webp"], help="output format")
    parser.add_argument("--checkout", type=Path, default=ROOT, help="serve this checkout's code (e.g. the previous release)")
    parser.add_argument("--budget-mb", help="CUTOUT_MEMORY_BUDGET_MB for the server (default: the service default)")
    args = parser.parse_args()

    env = {"CUTOUT_MAX_UPLOAD_MB": "40", "CUTOUT_REQUEST_TIMEOUT_S": "300"}
    if args.budget_mb:
        env["CUTOUT_MEMORY_BUDGET_MB"] = args.budget_mb
    params = {"format": args.format} if args.format != "png" else {}
    report = {"checkout": str(args.checkout), "format": args.format}
    with running_server(env, checkout=args.checkout) as (url, process):
        report["idle_rss_mb"] = round(rss_mb(process.pid)[0], 1)
        for size in args.sizes:
            width, height = SIZES[size]
            report[f"{size}MP {width}x{height}"] = measure(url, process.pid, photo_mosaic(width, height), args.requests, params)
            print(json.dumps(report, indent=2), flush=True)


if __name__ == "__main__":
    main()
