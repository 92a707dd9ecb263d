"""A real server process under stress: graceful shutdown under load, slow clients, bounded queue."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time

import httpx
import pytest

from scripts.loadgen import load, photo_jpeg, photo_mosaic, running_server
from tests.conftest import SHIPPED_MODEL

pytestmark = pytest.mark.skipif(not SHIPPED_MODEL.exists(), reason="the real-server tests run the shipped model")


def test_sigterm_lets_in_flight_requests_finish_and_refuses_new_ones():
    body = photo_jpeg(1024, 683)
    with running_server({"CUTOUT_CONCURRENCY": "1", "CUTOUT_QUEUE_SIZE": "8"}) as (url, process):

        async def scenario():
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                requests = [
                    asyncio.create_task(client.post("/remove-background", files={"file": ("p.jpg", body, "image/jpeg")}))
                    for _ in range(4)
                ]
                await asyncio.sleep(0.3)  # all four are in flight (one running, three queued)
                process.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.3)
                try:  # a new connection during the drain is refused, not left hanging
                    async with httpx.AsyncClient(base_url=url, timeout=5) as newcomer:
                        late = (await newcomer.get("/healthz")).status_code
                except httpx.ConnectError:
                    late = "refused"
                return await asyncio.gather(*requests, return_exceptions=True), late

        responses, late = asyncio.run(scenario())
        assert [getattr(r, "status_code", r) for r in responses] == [200] * 4
        assert late in ("refused", 503)
        # uvicorn re-raises the signal once the drain is done, so -SIGTERM is its clean exit.
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/healthz", timeout=2)


def test_a_trickling_upload_holds_no_inference_slot_and_times_out():
    env = {"CUTOUT_CONCURRENCY": "1", "CUTOUT_QUEUE_SIZE": "0", "CUTOUT_UPLOAD_TIMEOUT_S": "3"}
    with running_server(env) as (url, _process):
        port = int(url.rsplit(":", 1)[1])
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(
            b"POST /mask HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n" + b"\xff\xd8"
        )
        # While the slow client dribbles, the only slot is free for everyone else.
        started = time.perf_counter()
        response = httpx.post(f"{url}/mask", files={"file": ("p.jpg", photo_jpeg(320, 240), "image/jpeg")}, timeout=30)
        assert response.status_code == 200 and time.perf_counter() - started < 2.5
        slow.settimeout(10)
        reply = b""
        while b"}}" not in reply:  # headers and the JSON body may arrive in separate segments
            chunk = slow.recv(4096)
            if not chunk:
                break
            reply += chunk
        slow.close()
        reply = reply.decode(errors="replace")
        assert reply.startswith("HTTP/1.1 408") and '"upload_timeout"' in reply


def test_over_capacity_gets_503_with_retry_after_at_once():
    with running_server({"CUTOUT_CONCURRENCY": "1", "CUTOUT_QUEUE_SIZE": "1"}) as (url, _process):
        result = asyncio.run(load(url, "/remove-background", [photo_jpeg(1024, 683)], clients=8, max_requests=24))
        assert result.statuses.get(200, 0) >= 2
        assert result.statuses.get(503, 0) >= 1
        assert set(result.statuses) <= {200, 503} and result.errors == 0
        with httpx.Client(base_url=url) as client:
            metrics = client.get("/metrics").text
            assert 'cutout_rejected_total{reason="overloaded"}' in metrics
            assert client.get("/readyz").status_code == 200


def send_partial_upload(port: int, declared: int, sent: bytes, path: str = "/remove-background") -> socket.socket:
    """Open a connection, send headers declaring `declared` body bytes, and only `sent` of them."""
    connection = socket.create_connection(("127.0.0.1", port))
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: {declared}\r\n\r\n"
    connection.sendall(head.encode() + sent)
    return connection


def read_reply(connection: socket.socket, timeout: float = 10) -> str:
    connection.settimeout(timeout)
    reply = b""
    while b"}}" not in reply:
        chunk = connection.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply.decode(errors="replace")


def test_a_full_server_refuses_a_large_upload_before_receiving_it():
    with running_server({"CUTOUT_CONCURRENCY": "1", "CUTOUT_QUEUE_SIZE": "0"}) as (url, _process):
        port = int(url.rsplit(":", 1)[1])
        busy = threading.Thread(
            target=httpx.post,
            args=(f"{url}/remove-background",),
            kwargs={"content": photo_mosaic(6000, 4000), "headers": {"Content-Type": "image/jpeg"}, "timeout": 120},
        )
        busy.start()
        deadline = time.monotonic() + 30
        while "cutout_in_flight_requests 2.0" not in httpx.get(f"{url}/metrics").text:  # the big one, and this poll
            assert time.monotonic() < deadline, "the big request never started"
            time.sleep(0.02)
        time.sleep(0.3)  # its upload is in; it holds the only slot now
        # A 15 MB upload of which only 64 kB are sent: the answer comes anyway, so it was not waited for.
        connection = send_partial_upload(port, 15_000_000, b"\xff\xd8" + bytes(65_534))
        reply = read_reply(connection)
        connection.close()
        assert reply.startswith("HTTP/1.1 503") and "retry-after: 1" in reply.lower() and '"overloaded"' in reply
        assert "connection: close" in reply.lower()
        busy.join(timeout=120)
        after = httpx.post(f"{url}/mask", files={"file": ("p.jpg", photo_jpeg(320, 240), "image/jpeg")}, timeout=60)
        assert after.status_code == 200
        assert 'cutout_rejected_total{reason="overloaded"} 1.0' in httpx.get(f"{url}/metrics").text


def test_a_burst_of_large_photos_stays_within_the_memory_budget():
    from scripts.loadgen import rss_mb

    budget_mb = 400
    env = {"CUTOUT_CONCURRENCY": "4", "CUTOUT_QUEUE_SIZE": "8", "CUTOUT_MEMORY_BUDGET_MB": str(budget_mb)}
    env |= {"CUTOUT_MAX_UPLOAD_MB": "40", "CUTOUT_REQUEST_TIMEOUT_S": "120"}
    with running_server(env) as (url, process):
        idle_mb = rss_mb(process.pid)[0]
        big = photo_mosaic(3000, 2000)  # 6 MP: 183 MB of budget each, so two at a time fit
        result = asyncio.run(load(url, "/remove-background", [big], clients=6, max_requests=6))
        assert set(result.statuses) <= {200, 503} and result.errors == 0 and result.statuses.get(200, 0) >= 4
        peak_mb = rss_mb(process.pid)[1]
        assert peak_mb - idle_mb <= budget_mb * 1.1, (idle_mb, peak_mb)
