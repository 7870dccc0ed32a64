"""The app's loaded state and the `Annotated` dependencies routes take: the state, the opened RAG, the API key."""
from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from indexers.errors import ServiceError
from services.gate import Gate
from services.metrics import Metrics, new_metrics
from services.settings import ServiceSettings

__all__ = ["ServiceState", "NotReady", "StateDep", "RagDep", "require_key", "key_matches"]

log = logging.getLogger(__name__)


class NotReady(ServiceError):
    """The index or the models are still loading, or failed to load (HTTP 503)."""


class ServiceState:
    """What one app holds: settings, metrics, the two gates, and the RAG once loaded (`load_error` if not)."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.metrics: Metrics = new_metrics()
        self.ask_gate = Gate("ask", settings.max_queue, settings.timeout_s)
        self.work_gate = Gate("search/ingest", settings.max_pending, settings.timeout_s)
        self.metrics.in_flight.labels("ask").set_function(lambda: self.ask_gate.active)
        self.metrics.in_flight.labels("work").set_function(lambda: self.work_gate.active)
        self.rag: Any = None
        self.ready = False
        self.load_error: str | None = None
        self._keys = tuple(k.encode() for k in settings.api_keys)

    def check_key(self, presented: str | None) -> bool:
        """True when auth is off or `presented` equals one of the keys (constant time, every key compared)."""
        if not self._keys:
            return self.settings.allow_anonymous
        return key_matches(presented, self._keys)


def key_matches(presented: str | None, keys: tuple[bytes, ...]) -> bool:
    """Constant-time membership: compares against every key, so timing says nothing about which (or how much)."""
    if not presented:
        return False
    p = presented.encode("utf-8", "replace")
    ok = False
    for k in keys:
        ok |= hmac.compare_digest(p, k)
    return ok


def _state(request: Request) -> ServiceState:
    return request.app.state.svc


StateDep = Annotated[ServiceState, Depends(_state)]


def _rag(state: StateDep) -> Any:
    if state.rag is None or not state.ready:
        if state.load_error:
            raise NotReady(f"the service failed to load its index or models: {state.load_error}; "
                           "fix it and restart the service")
        raise NotReady("the index and models are still loading: retry shortly (GET /readyz says when)")
    return state.rag


RagDep = Annotated[Any, Depends(_rag)]


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: KEY")


def require_key(state: StateDep, bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
                header: Annotated[str | None, Security(_header)]) -> None:
    """401 unless the request carries a valid key (`Authorization: Bearer KEY` or `X-API-Key: KEY`)."""
    presented = bearer.credentials if bearer is not None else header
    if not state.check_key(presented):
        state.metrics.rejected.labels("unauthorized").inc()
        raise HTTPException(401, "missing or invalid API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY' "
                                 "with a key from ADARAG_API_KEYS or the --api-keys-file",
                            headers={"WWW-Authenticate": "Bearer"})
