"""Pure ASGI middleware: the request body limit (413), and metrics plus a last-resort 500 around everything."""
from __future__ import annotations

import json
import logging
import time

from fastapi import HTTPException

from services.metrics import Metrics

__all__ = ["BodyLimit", "Observe"]

log = logging.getLogger(__name__)


async def _send_json(send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": data})


class BodyLimit:
    """Refuse bodies over `limit` bytes: at once from Content-Length, else while the body streams in."""

    def __init__(self, app, limit: int, metrics: Metrics) -> None:
        self.app, self.limit, self.metrics = app, limit, metrics

    def _message(self) -> str:
        return (f"request body over the {self.limit:,}-byte limit: send fewer or smaller documents per request "
                "(or raise --max-body-bytes)")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            self.metrics.rejected.labels("body_too_large").inc()
            return await _send_json(send, 413, {"error": self._message(), "type": "PayloadTooLarge"},
                                    [(b"connection", b"close")])
        seen = 0

        async def limited():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    self.metrics.rejected.labels("body_too_large").inc()
                    raise HTTPException(413, self._message())
            return msg

        await self.app(scope, limited, send)


class Observe:
    """Count and time every request by route template; an exception no handler took becomes a logged 500."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = 500
        started = False

        async def watch(msg):
            nonlocal status, started
            if msg["type"] == "http.response.start":
                status, started = msg["status"], True
            await send(msg)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("unhandled error serving %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await _send_json(send, 500, {"error": "internal error: the server log has the details",
                                             "type": "InternalError"})
                status = 500
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(scope.get("method", ""), route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - t0)
