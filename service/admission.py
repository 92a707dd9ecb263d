"""Bounded concurrency with a bounded wait queue: over capacity is refused at once, never queued forever.

A slot is held until the inference thread really finishes, even when the client was already answered
with a timeout, so memory and CPU stay bounded by `concurrency` whatever clients do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Overloaded(Exception):
    """No slot and no room in the queue, or the wait for a slot ran out."""


class TimedOut(Exception):
    """Processing took longer than the request timeout."""


class Admission:
    def __init__(self, concurrency: int, queue_size: int, timeout_s: float):
        self.concurrency, self.queue_size, self.timeout_s = concurrency, queue_size, timeout_s
        self._slots = asyncio.Semaphore(concurrency)
        self.waiting = 0
        self.running = 0

    async def run(self, work: Callable[[], T]) -> T:
        """Run blocking `work` in a worker thread once a slot is free."""
        if self.running + self.waiting >= self.concurrency + self.queue_size:
            raise Overloaded("the server is at capacity")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        self.waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self.timeout_s)
        except TimeoutError:
            raise Overloaded("no processing slot became free in time") from None
        finally:
            self.waiting -= 1
        self.running += 1
        future = asyncio.ensure_future(asyncio.to_thread(work))
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout=max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise TimedOut(f"processing took longer than {self.timeout_s:g} s") from None

    def _release(self, _future) -> None:
        self.running -= 1
        self._slots.release()
