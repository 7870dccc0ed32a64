"""The FastAPI app factory: `create_app(rag_or_factory, settings)`; uvicorn runs it (`adarag serve`)."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from indexers.artifact import adarag_version
from rag.sdk import RAG
from services.deps import ServiceState, require_key
from services.handlers import install_handlers
from services.middleware import BodyLimit, Observe
from services.routes import ask, documents, openai, ops, page, search
from services.settings import ServiceSettings

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def _load(state: ServiceState, source: RAG | Callable[[], RAG]) -> None:
    """Open the index (when given a factory) and warm the models up; record a failure instead of dying."""
    try:
        rag = source if isinstance(source, RAG) else source()
        state.rag = rag
        if state.settings.warm_up:
            rag.warm_up()
        state.ready = True
        log.info("adarag service ready")
    except Exception as e:  # readiness reports it; the process stays up so /readyz can say why
        log.exception("the service could not load its index or models")
        state.load_error = str(e) or type(e).__name__


def create_app(rag_or_factory: RAG | Callable[[], RAG], settings: ServiceSettings) -> FastAPI:
    """An app serving one RAG: an opened instance (the caller closes it) or a factory called at startup.

    Loading runs on a thread at startup, so /healthz answers at once and /readyz turns 200 when done.
    """
    if not isinstance(rag_or_factory, RAG) and not callable(rag_or_factory):
        raise TypeError(f"create_app needs a RAG or a function returning one, got {type(rag_or_factory).__name__}")
    if not isinstance(settings, ServiceSettings):
        raise TypeError(f"settings must be a ServiceSettings, got {type(settings).__name__}")
    state = ServiceState(settings)
    owned = not isinstance(rag_or_factory, RAG)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loader = asyncio.get_running_loop().run_in_executor(None, _load, state, rag_or_factory)
        try:
            yield
        finally:
            await loader
            if owned and state.rag is not None:
                state.rag.close()

    app = FastAPI(title="adarag", version=adarag_version(), lifespan=lifespan,
                  summary="Grounded question answering and search over an adarag index.")
    app.state.svc = state
    install_handlers(app)
    auth = [Depends(require_key)]
    app.include_router(ops.router)
    app.include_router(page.router)
    for r in (ask.router, search.router, documents.router, openai.router):
        app.include_router(r, dependencies=auth)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, metrics=state.metrics)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST",
                           "DELETE"], allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    app.add_middleware(Observe, metrics=state.metrics)
    return app
