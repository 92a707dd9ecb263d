"""End-to-end service benchmark on this machine: a 1024x683 JPEG -> PNG cutout over real HTTP.

    python -m scripts.benchmark_service [--requests 40] [--model models/cutout-person.onnx] [--checkout DIR]

Prints sequential latency p50/p95, throughput with 4 concurrent clients, and the server's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

import httpx
import numpy as np

from scripts.loadgen import ROOT, load, photo_jpeg, rss_mb, running_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40, help="sequential requests (and 2x that with 4 clients)")
    parser.add_argument("--model", help="ONNX model (default: the shipped one)")
    parser.add_argument("--path", default="/remove-background")
    parser.add_argument(
        "--checkout", type=Path, default=ROOT, help="serve this checkout's code, e.g. a worktree of the previous release"
    )
    args = parser.parse_args()

    env = {"CUTOUT_MODEL_PATH": str(Path(args.model).resolve())} if args.model else {}
    body = photo_jpeg(1024, 683)
    with running_server(env, checkout=args.checkout) as (url, process):
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(3):  # warm-up
                client.post(args.path, files={"file": ("p.jpg", body, "image/jpeg")}).raise_for_status()
            latencies, server_ms = [], []
            for _ in range(args.requests):
                t0 = time.perf_counter()
                response = client.post(args.path, files={"file": ("p.jpg", body, "image/jpeg")})
                response.raise_for_status()
                latencies.append((time.perf_counter() - t0) * 1000)
                server_ms.append(float(response.headers["X-Processing-Time-Ms"]))
            info = client.get("/info").json()
        concurrent = asyncio.run(load(url, args.path, [body], clients=4, max_requests=2 * args.requests))
        _, peak = rss_mb(process.pid)
    print(
        json.dumps(
            {
                "checkout": str(args.checkout),
                "model": info["model"]["name"],
                "input_size": info["model"]["input_size"],
                "precision": info["model"]["metadata"].get("cutout.precision"),
                "photo": "1024x683 JPEG -> PNG cutout",
                "sequential_p50_ms": round(float(np.percentile(latencies, 50)), 1),
                "sequential_p95_ms": round(float(np.percentile(latencies, 95)), 1),
                "server_processing_p50_ms": round(statistics.median(server_ms), 1),
                "concurrent_4_clients": concurrent.summary(),
                "server_peak_rss_mb": round(peak, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
