"""Sustained load on loopback against a real server: 8 and 32 concurrent clients on real photos.

    python -m scripts.load_test [--seconds 60] [--clients 8 32] [--soak 1000]

Prints, per level: throughput, p50/p95/p99 latency, statuses (only 200 and 503 backpressure are allowed),
and server RSS before/after; then a soak of --soak requests checking that RSS stops growing
(within 10% of its value after warm-up) and that no temp files were left behind. Exits 1 on a violation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from scripts.loadgen import load, photo_jpeg, rss_mb, running_server


def temp_files() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).iterdir()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--soak", type=int, default=1000, help="requests in the memory soak (0: skip)")
    parser.add_argument("--path", default="/remove-background")
    args = parser.parse_args()

    bodies = [photo_jpeg(1024, 683, i) for i in range(4)] + [photo_jpeg(640, 427, i) for i in range(4)]
    report, ok = {}, True
    temp_before = temp_files()
    with running_server() as (url, process):
        asyncio.run(load(url, args.path, bodies, clients=2, max_requests=10))  # warm-up
        warm_rss, _ = rss_mb(process.pid)
        for clients in args.clients:
            before, _ = rss_mb(process.pid)
            result = asyncio.run(load(url, args.path, bodies, clients=clients, duration_s=args.seconds))
            after, peak = rss_mb(process.pid)
            summary = result.summary()
            bad = {s: n for s, n in summary["statuses"].items() if s not in (200, 503)}
            ok &= not bad and not result.errors
            report[f"{clients}_clients"] = {
                **summary,
                "rss_before_mb": round(before, 1),
                "rss_after_mb": round(after, 1),
                "rss_peak_mb": round(peak, 1),
                "unexpected_statuses": bad,
            }
            print(json.dumps({f"{clients}_clients": report[f"{clients}_clients"]}), flush=True)
        if args.soak:
            base = asyncio.run(load(url, args.path, bodies, clients=4, max_requests=100))
            settled, _ = rss_mb(process.pid)
            soak = asyncio.run(load(url, args.path, bodies, clients=4, max_requests=args.soak))
            final, _ = rss_mb(process.pid)
            growth = (final - settled) / settled
            ok &= growth <= 0.10 and soak.statuses.get(200, 0) + base.statuses.get(200, 0) > 0
            report["soak"] = {
                "requests": args.soak,
                "rss_after_warmup_mb": round(warm_rss, 1),
                "rss_settled_mb": round(settled, 1),
                "rss_after_soak_mb": round(final, 1),
                "growth": round(growth, 4),
                "statuses": soak.summary()["statuses"],
            }
            print(json.dumps({"soak": report["soak"]}), flush=True)
    leftovers = sorted(temp_files() - temp_before)
    report["temp_files_left"] = leftovers
    ok &= not leftovers
    print(json.dumps({"verdict": "ok" if ok else "FAILED", "temp_files_left": leftovers}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
