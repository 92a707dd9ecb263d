"""Who gets processed, and when: a bounded number of requests, a bounded queue, and a memory budget.

- Count: at most `concurrency` images in work and `queue_size` waiting; beyond that a request is refused
  with 503 at once. When the server is already full the refusal comes before the upload is read
  (`RefuseWhenFull`), so a full server spends nothing on uploads it would refuse anyway.
- Memory: the work in flight holds at most `budget_mb` of memory by its pixels (`PixelBudget`): each image
  takes its width x height x BYTES_PER_PIXEL, taken once the image header is read and before decoding.
  An image larger than the whole budget runs alone.

A slot is held until the inference thread really finishes, even when the client was already answered
with a timeout, so memory and CPU stay bounded whatever clients do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from service.errors import api_error_response, retry_later

T = TypeVar("T")

# Peak memory growth of the server per pixel of one photo in work, default options, with a margin:
# `python -m scripts.benchmark_large` measured 25 at 12 MP and 19 at 24 MP (README, "Large photos and memory").
BYTES_PER_PIXEL = 32


class Overloaded(Exception):
    """No slot and no room in the queue, or the wait for a slot ran out."""


class TimedOut(Exception):
    """Processing took longer than the request timeout."""


class PixelBudget:
    """A weighted semaphore over memory: an image takes the megabytes its pixels need."""

    def __init__(self, budget_mb: float):
        self.budget_mb = budget_mb
        self.in_use_mb = 0.0
        self._changed = asyncio.Condition()

    def cost_mb(self, pixels: int) -> float:
        return min(self.budget_mb, pixels * BYTES_PER_PIXEL / 2**20)

    async def acquire(self, cost_mb: float) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_use_mb + cost_mb <= self.budget_mb)
            self.in_use_mb += cost_mb

    async def release(self, cost_mb: float) -> None:
        async with self._changed:
            self.in_use_mb -= cost_mb
            self._changed.notify_all()


class Admission:
    def __init__(self, concurrency: int, queue_size: int, timeout_s: float, budget_mb: float = float("inf")):
        self.concurrency, self.queue_size, self.timeout_s = concurrency, queue_size, timeout_s
        self._slots = asyncio.Semaphore(concurrency)
        self.budget = PixelBudget(budget_mb)
        self.waiting = 0
        self.running = 0

    def is_full(self) -> bool:
        return self.running + self.waiting >= self.concurrency + self.queue_size

    async def run(self, work: Callable[[], T], pixels: int = 0) -> T:
        """Run blocking `work` in a worker thread once a slot and the image's memory are free."""
        if self.is_full():
            raise Overloaded("the server is at capacity")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        cost_mb = self.budget.cost_mb(pixels)
        self.waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self.timeout_s)
        except TimeoutError:
            raise Overloaded("no processing slot became free in time") from None
        finally:
            self.waiting -= 1
        try:
            await asyncio.wait_for(self.budget.acquire(cost_mb), timeout=max(0.001, deadline - loop.time()))
        except TimeoutError:
            self._slots.release()
            raise Overloaded("the memory budget did not free up in time") from None
        self.running += 1
        future = asyncio.ensure_future(asyncio.to_thread(work))
        future.add_done_callback(lambda _f: loop.create_task(self._release(cost_mb)))
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout=max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise TimedOut(f"processing took longer than {self.timeout_s:g} s") from None

    async def _release(self, cost_mb: float) -> None:
        self.running -= 1
        self._slots.release()
        await self.budget.release(cost_mb)


class RefuseWhenFull:
    """ASGI middleware: when every slot and queue place is taken, answer 503 before the upload is parsed.

    A small body (up to DRAIN_UP_TO_BYTES, as declared) is read and dropped unparsed, so the client reads its
    503 on a connection that stays usable; a larger one is not waited for: the answer says
    `Connection: close` and the connection is closed, as HTTP/1.1 allows.
    """

    DRAIN_UP_TO_BYTES = 1 << 20

    def __init__(
        self,
        app,
        admission: Callable[[], Admission | None],
        paths: tuple[str, ...],
        on_refusal: Callable[[], None] = lambda: None,
    ):
        self.app, self.admission, self.paths, self.on_refusal = app, admission, paths, on_refusal

    async def __call__(self, scope, receive, send):
        admission = self.admission() if scope["type"] == "http" and scope["method"] == "POST" else None
        if admission is None or scope["path"] not in self.paths or not admission.is_full():
            return await self.app(scope, receive, send)
        self.on_refusal()
        error = retry_later("overloaded", "Try again shortly: the server is at capacity.")
        declared = dict(scope.get("headers") or []).get(b"content-length", b"").decode()
        if declared.isdigit() and int(declared) <= self.DRAIN_UP_TO_BYTES:
            while True:  # drop the body as it comes: no parsing, no buffering
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                if not message.get("more_body", False):
                    break
        else:
            error.headers["Connection"] = "close"
        return await api_error_response(error)(scope, receive, send)
