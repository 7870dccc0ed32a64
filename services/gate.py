"""A bounded admission gate: at most `capacity` jobs in the process at once; the next one is refused, not queued.

Blocking SDK calls run on worker threads. A timed-out request answers 504 at once, but its slot is held until
its thread really ends, so the bound counts every thread still working: memory stays flat under any load.
"""
from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from indexers.errors import ServiceError

__all__ = ["Gate", "GateFull", "GateTimeout"]

T = TypeVar("T")


class GateFull(ServiceError):
    """Every slot is taken: the caller should retry after `retry_after` seconds (HTTP 503)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GateTimeout(ServiceError):
    """A job ran past the per-request timeout (HTTP 504)."""


class Gate:
    """Counts admitted jobs (running or waiting on a lock inside the SDK); refuses past `capacity`."""

    def __init__(self, name: str, capacity: int, timeout_s: float) -> None:
        if capacity < 1:
            raise ValueError(f"gate capacity must be >= 1, got {capacity}")
        self.name = name
        self.capacity = capacity
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._active = 0
        self._ewma_s = 1.0  # smoothed seconds per job: the Retry-After hint

    @property
    def active(self) -> int:
        return self._active

    def try_acquire(self) -> None:
        """Take a slot or raise GateFull; pair with `release()`."""
        with self._lock:
            if self._active >= self.capacity:
                wait = max(1, min(60, math.ceil(self._ewma_s * self._active / self.capacity)))
                raise GateFull(f"the {self.name} queue is full ({self.capacity} requests in progress): "
                               f"retry after {wait} s", wait)
            self._active += 1

    def release(self, seconds: float | None = None) -> None:
        """Give a slot back; `seconds` (how long the job took) updates the Retry-After estimate."""
        with self._lock:
            if self._active <= 0:
                raise RuntimeError(f"gate {self.name}: release() without try_acquire()")
            self._active -= 1
            if seconds is not None:
                self._ewma_s = 0.8 * self._ewma_s + 0.2 * seconds

    async def run(self, fn: Callable[..., T], *args, **kwargs) -> T:
        """Run `fn` on a worker thread inside a slot, with the gate's timeout (GateFull, GateTimeout)."""
        self.try_acquire()
        return await self.run_acquired(fn, *args, **kwargs)

    async def run_acquired(self, fn: Callable[..., T], *args, **kwargs) -> T:
        """Like `run` for a slot already taken; the slot is released when the thread ends, not on timeout."""
        loop = asyncio.get_running_loop()
        started = time.monotonic()

        def work() -> T:
            try:
                return fn(*args, **kwargs)
            finally:
                self.release(time.monotonic() - started)

        try:
            fut = loop.run_in_executor(None, work)
        except BaseException:
            self.release()
            raise
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.timeout_s)
        except TimeoutError:
            fut.add_done_callback(_consume)
            raise GateTimeout(f"the request took longer than the {self.timeout_s:g} s timeout; ask for fewer "
                              "tokens or passages, or raise --timeout") from None


def _consume(fut: asyncio.Future) -> None:
    """Retrieve a finished orphan's exception so asyncio does not log it as never retrieved."""
    if not fut.cancelled():
        fut.exception()
