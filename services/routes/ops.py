"""Operations: GET /healthz (process alive, no auth), /readyz (index and models loaded), /metrics (Prometheus)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.deps import StateDep, require_key
from services.schemas import ErrorOut, HealthOut

__all__ = ["router"]

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> Any:
    """Liveness: the process answers. Open, no key needed."""
    return {"status": "ok"}


@router.get("/readyz", response_model=HealthOut, responses={503: {"model": ErrorOut}})
async def readyz(state: StateDep) -> Any:
    """Readiness: 200 once the index is open and the models are loaded, 503 (with Retry-After) until then.

    A generation of the index published by another writer is loaded here (and by the next request); if it
    cannot be loaded, the service is stale and says so with a 503 until it can.
    """
    if state.ready:
        rag = state.rag
        if rag.stale:
            await run_in_threadpool(rag.refresh)
        if rag.reload_error:
            return JSONResponse({"error": f"stale: {rag.reload_error}", "type": "Stale"}, status_code=503)
        return {"status": "ready"}
    if state.load_error:
        return JSONResponse({"error": f"failed to load: {state.load_error}", "type": "NotReady"}, status_code=503)
    return JSONResponse({"error": "loading the index and models", "type": "NotReady"}, status_code=503,
                        headers={"Retry-After": "5"})


@router.get("/metrics", dependencies=[Depends(require_key)], response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, 401: {"model": ErrorOut}})
async def metrics(state: StateDep) -> Response:
    """Prometheus text format: requests, latency histograms, tokens/s, retrieval calls, queue occupancy."""
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
