"""Server-Sent Events for a streamed answer: `token` events with text deltas, then `answer` (or `error`)."""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from services.gate import Gate, GateTimeout
from services.handlers import describe

__all__ = ["sse_event", "stream_events"]

log = logging.getLogger(__name__)


def sse_event(event: str, data: dict[str, Any]) -> bytes:
    """One SSE frame; JSON data never holds a raw newline, so one `data:` line suffices."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _adarag_delta(text: str) -> bytes:
    return sse_event("token", {"text": text})


def _adarag_error(status: int, body: dict[str, Any]) -> bytes:
    return sse_event("error", {**body, "status": status})


async def stream_events(gate: Gate, start: Callable[[], Iterator[Any]], on_final: Callable[[Any], Any],
                        *, cancel: threading.Event | None = None,
                        frame_delta: Callable[[str], bytes] = _adarag_delta,
                        frame_final: Callable[[Any], bytes] = lambda d: sse_event("answer", d),
                        frame_error: Callable[[int, dict[str, Any]], bytes] = _adarag_error) -> AsyncIterator[bytes]:
    """Run `start()` (yields str deltas, then the final object) on one worker thread holding a taken gate slot.
    Frames: adarag's own (`token`, `answer`, `error` events) unless `frame_*` give another wire format (the
    OpenAI chunks of services.routes.openai); `frame_final` gets `on_final(final object)`.

    The slot is released when that thread ends, i.e. when the generation is over. If the client goes away or the
    gate's timeout passes (the stream then ends with an `error` event), `cancel` is set, which stops a generation
    that watches it at its next step; the slot is held until the worker has really stopped.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop closed (server shutdown): nobody is listening any more
            stop.set()

    def work() -> None:
        t0 = time.monotonic()
        try:
            for item in start():
                # After the client left, keep draining until the generation notices `cancel`: the slot must stay
                # taken until the model is really free (that is what keeps the queue bound honest).
                if not stop.is_set():
                    put(("item", item))
        except Exception as e:
            if not stop.is_set():
                put(("error", e))
        finally:
            gate.release(time.monotonic() - t0)
            put(("end", None))

    try:
        loop.run_in_executor(None, work)
    except BaseException:
        gate.release()
        raise
    deadline = loop.time() + gate.timeout_s
    try:
        while True:
            try:
                kind, item = await asyncio.wait_for(queue.get(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                status, body, _ = describe(GateTimeout(
                    f"the answer took longer than the {gate.timeout_s:g} s timeout; ask for fewer tokens or "
                    "passages, or raise --timeout"))
                yield frame_error(status, body)
                return
            if kind == "end":
                return
            if kind == "error":
                status, body, _ = describe(item)
                yield frame_error(status, body)
                return
            if isinstance(item, str):
                if item:
                    yield frame_delta(item)
            else:
                yield frame_final(on_final(item))
    finally:
        stop.set()
        if cancel is not None:
            cancel.set()
