"""The one place errors become HTTP: status, `{"error", "type"}` body, headers. Never a stack trace."""
from __future__ import annotations

import logging
import sys
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from indexers.errors import (
    Cancelled,
    ConfigError,
    CorpusError,
    IndexBusyError,
    NotFoundError,
    RagError,
    ShardUnavailableError,
)
from services.deps import NotReady
from services.gate import GateFull, GateTimeout

__all__ = ["describe", "install_handlers", "error_response"]

log = logging.getLogger(__name__)

_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (NotFoundError, 404),
    (GateFull, 503),
    (NotReady, 503),
    (IndexBusyError, 503),
    (ShardUnavailableError, 503),
    (GateTimeout, 504),
    (Cancelled, 504),
    (ConfigError, 422),
    (CorpusError, 422),
    (RagError, 500),
    (ValueError, 422),
)
_REASON = {GateFull: "queue_full", GateTimeout: "timeout"}


def describe(exc: BaseException) -> tuple[int, dict[str, str], dict[str, str]]:
    """(status, body, headers) for an exception; unexpected ones are logged and answered with a generic 500."""
    if isinstance(exc, StarletteHTTPException):
        unreadable = _unreadable_body(exc)
        if unreadable is not None:
            return 422, {"error": f"invalid request: {unreadable}", "type": "ValidationError"}, {}
        return exc.status_code, {"error": str(exc.detail), "type": "HTTPError"}, dict(exc.headers or {})
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            headers = {}
            if isinstance(exc, GateFull):
                headers["Retry-After"] = str(exc.retry_after)
            elif isinstance(exc, (NotReady, IndexBusyError, ShardUnavailableError)):
                headers["Retry-After"] = "5"
            return status, {"error": str(exc), "type": type(exc).__name__}, headers
    log.error("unexpected error while serving a request", exc_info=exc)
    return 500, {"error": "internal error: the server log has the details", "type": "InternalError"}, {}


def _unreadable_body(exc: StarletteHTTPException) -> str | None:
    """Why json.loads could not read the body, with the fix; FastAPI answers these with a bare 400 "There was an
    error parsing the body" and keeps the reason only as the exception's cause."""
    cause = exc.__cause__
    if exc.status_code != 400 or cause is None:
        return None
    if isinstance(cause, UnicodeDecodeError):
        return (f"the body is not valid UTF-8 (byte 0x{cause.object[cause.start]:02x} at offset {cause.start}): "
                "send JSON encoded as UTF-8")
    if isinstance(cause, RecursionError):
        return "the body's JSON is nested too deeply to read: send flat objects (metadata a few levels deep at most)"
    if isinstance(cause, ValueError):  # json.loads' only other failure: an integer over Python's digit limit
        return (f"a number in the body has more than {sys.get_int_max_str_digits():,} digits: send it as a JSON "
                "string or leave it out")
    return None


_OPENAI_PATHS = ("/v1/chat/", "/v1/models")


def _shaped(body: dict[str, str], status: int, request: Request | None) -> dict[str, Any]:
    """The error body in the dialect of the route: OpenAI's `{"error": {"message", "type", "param", "code"}}`
    under /v1/chat/ and /v1/models (so OpenAI clients show the message), adarag's `{"error", "type"}` elsewhere."""
    if request is not None and request.url.path.startswith(_OPENAI_PATHS):
        return {"error": {"message": body["error"], "type": body["type"], "param": None, "code": status}}
    return body


def error_response(exc: BaseException, request: Request | None = None) -> JSONResponse:
    status, body, headers = describe(exc)
    if request is not None:
        for cls, reason in _REASON.items():
            if isinstance(exc, cls):
                request.app.state.svc.metrics.rejected.labels(reason).inc()
    return JSONResponse(_shaped(body, status, request), status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        msg = e.get("msg", "invalid")
        if e.get("type") == "json_invalid":
            ctx = e.get("ctx", {}).get("error", "")
            msg = f"malformed JSON ({ctx})" if ctx else "malformed JSON"
            loc = "body"
        parts.append(f"{loc}: {msg}")
    more = len(exc.errors()) - len(parts)
    return "invalid request: " + "; ".join(parts) + (f" (and {more} more)" if more > 0 else "") + \
        " -- see /openapi.json for the request schema"


async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    body = {"error": _validation_message(exc), "type": "ValidationError"}
    return JSONResponse(_shaped(body, 422, request), status_code=422)


async def _on_error(request: Request, exc: Exception) -> JSONResponse:
    return error_response(exc, request)


def install_handlers(app: FastAPI) -> None:
    """Register the handlers; anything else is caught by the metrics middleware as a logged generic 500."""
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_error)
    app.add_exception_handler(RagError, _on_error)
    app.add_exception_handler(ValueError, _on_error)
