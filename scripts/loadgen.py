"""Shared pieces of the benchmark and load-test scripts: a real server on loopback and bounded clients.

Traffic only ever goes to 127.0.0.1, and every loop is bounded by a request count or a duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "tests" / "data" / "photos"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process, in MB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def photo_jpeg(width: int = 1024, height: int = 683, index: int = 0) -> bytes:
    """A real photo scaled to width x height (the dataset's photos are at most 448 px)."""
    photo = Image.open(sorted(PHOTOS.glob("*.jpg"))[index % len(list(PHOTOS.glob("*.jpg")))]).convert("RGB")
    buffer = io.BytesIO()
    photo.resize((width, height), Image.LANCZOS).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def photo_mosaic(width: int, height: int, quality: int = 90, per_row: int = 3) -> bytes:
    """A width x height JPEG of real photos, `per_row` across, with real photo detail at every scale.

    Each photo is enlarged to fill its cell (so people stay findable at any size), and the full-resolution
    texture of the photos tiled at their own size is added back on top: an upscale alone is too smooth
    (its PNG is smaller and faster than a real photo's), tiles at their own size make people too small.
    """
    from PIL import ImageFilter

    tiles = [Image.open(p).convert("RGB") for p in sorted(PHOTOS.glob("*.jpg"))]
    cell_w = width // per_row
    cell_h = round(cell_w * 2 / 3)
    large, native = Image.new("RGB", (width, height)), Image.new("RGB", (width, height))
    for index, (x, y) in enumerate((x, y) for y in range(0, height, cell_h) for x in range(0, width, cell_w)):
        large.paste(tiles[index % len(tiles)].resize((cell_w, cell_h), Image.LANCZOS), (x, y))
    for index, (x, y) in enumerate((x, y) for y in range(0, height, 298) for x in range(0, width, 448)):
        native.paste(tiles[index % len(tiles)], (x, y))
    detail = np.asarray(native, np.int16) - np.asarray(native.filter(ImageFilter.GaussianBlur(2)), np.int16)
    pixels = np.clip(np.asarray(large, np.int16) + detail, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def wait_until_ready(url: str, timeout_s: float, alive=lambda: True) -> None:
    """Poll GET /readyz until it answers 200; RuntimeError once the deadline passes or `alive()` turns false."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        if not alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not become ready")
        time.sleep(0.1)


@contextlib.contextmanager
def running_server(env: dict[str, str] | None = None, ready_timeout: float = 120, checkout: Path = ROOT):
    """Start `python -m service` of `checkout` (e.g. an older release's worktree) on a free loopback port;
    yield (base_url, process)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=checkout,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, ready_timeout, alive=lambda: process.poll() is None)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=60)


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0

    def summary(self) -> dict:
        ok = np.array(self.latencies_ms) if self.latencies_ms else np.array([0.0])
        total = sum(self.statuses.values())
        return {
            "requests": total,
            "throughput_rps": round(self.statuses.get(200, 0) / self.seconds, 2) if self.seconds else 0,
            "p50_ms": round(float(np.percentile(ok, 50)), 1),
            "p95_ms": round(float(np.percentile(ok, 95)), 1),
            "p99_ms": round(float(np.percentile(ok, 99)), 1),
            "statuses": dict(sorted(self.statuses.items())),
            "transport_errors": self.errors,
        }


async def load(
    url: str,
    path: str,
    bodies: list[bytes],
    clients: int,
    duration_s: float | None = None,
    max_requests: int | None = None,
    params: dict | None = None,
) -> LoadResult:
    """`clients` concurrent loops POSTing photos until the duration or the request budget runs out."""
    result, sent = LoadResult(), 0
    started = time.perf_counter()

    def more() -> bool:
        if max_requests is not None and sent >= max_requests:
            return False
        return duration_s is None or time.perf_counter() - started < duration_s

    async def client_loop(client: httpx.AsyncClient, index: int):
        nonlocal sent
        while more():
            sent += 1
            body = bodies[(index + sent) % len(bodies)]
            t0 = time.perf_counter()
            try:
                response = await client.post(path, params=params, files={"file": ("photo.jpg", body, "image/jpeg")})
            except httpx.HTTPError:
                result.errors += 1
                continue
            result.statuses[response.status_code] = result.statuses.get(response.status_code, 0) + 1
            if response.status_code == 200:
                result.latencies_ms.append((time.perf_counter() - t0) * 1000)
            elif response.status_code == 503:
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")) / 10)  # polite, bounded retry pace

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        await asyncio.gather(*(client_loop(client, i) for i in range(clients)))
    result.seconds = time.perf_counter() - started
    return result
