"""Server CPU time per refused upload when the server is full, with clients that ignore Retry-After.

    python -m scripts.refusal_cost [--refusals 160] [--clients 16] [--upload-mb 5] [--checkout DIR]

One slot, no queue, and a stream of large photos keeps the slot busy; meanwhile `clients` connections
each send a whole upload and read the 503, over and over. The event-loop thread's CPU time over the
burst, divided by the refusals, is the price of saying no (inference runs in other threads).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from scripts.loadgen import ROOT, photo_mosaic, running_server


def thread_cpu_seconds(pid: int, tid: int) -> float:
    fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def refused_upload(port: int, body: bytes) -> bool:
    """Send a whole multipart upload (as a client ignoring Retry-After would) and read the status line."""
    boundary = "cutoutboundary"
    payload = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.jpg"\r\n'.encode()
        + b"Content-Type: image/jpeg\r\n\r\n"
        + body
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        f"POST /remove-background HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port)) as connection:
        try:
            connection.sendall(head.encode() + payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused early: the server stopped reading and closed the connection
        connection.settimeout(60)
        try:
            return connection.recv(64).startswith(b"HTTP/1.1 503")
        except (ConnectionResetError, TimeoutError):
            return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--refusals", type=int, default=160)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--upload-mb", type=float, default=5.0)
    parser.add_argument("--checkout", type=Path, default=ROOT, help="serve this checkout's code (e.g. the previous release)")
    args = parser.parse_args()

    upload = os.urandom(int(args.upload_mb * 2**20))
    busy_photo = photo_mosaic(6000, 4000)
    env = {"CUTOUT_CONCURRENCY": "1", "CUTOUT_QUEUE_SIZE": "0", "CUTOUT_MAX_UPLOAD_MB": "40"}
    with running_server(env, checkout=args.checkout) as (url, process):
        port, stop = int(url.rsplit(":", 1)[1]), threading.Event()

        def keep_busy():
            while not stop.is_set():
                httpx.post(f"{url}/remove-background", content=busy_photo, headers={"Content-Type": "image/jpeg"}, timeout=300)

        busy = threading.Thread(target=keep_busy)
        busy.start()
        time.sleep(1.0)  # the first big photo is in work
        cpu_before, started = thread_cpu_seconds(process.pid, process.pid), time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            refused = sum(pool.map(lambda _i: refused_upload(port, upload), range(args.refusals)))
        cpu = thread_cpu_seconds(process.pid, process.pid) - cpu_before
        seconds = time.perf_counter() - started
        stop.set()
        busy.join()
    print(
        json.dumps(
            {
                "checkout": str(args.checkout),
                "upload_mb": args.upload_mb,
                "refused_503": refused,
                "attempts": args.refusals,
                "event_loop_cpu_s": round(cpu, 3),
                "cpu_ms_per_refusal": round(1000 * cpu / max(1, refused), 2),
                "refusals_per_s": round(refused / seconds, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
