"""POST /v1/search: ranked passages for a query."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from retrievers.search import check_query
from services.deps import RagDep, StateDep
from services.schemas import ErrorOut, SearchRequest, SearchResponse

__all__ = ["router"]

router = APIRouter(tags=["search"])


@router.post("/v1/search", response_model=SearchResponse,
             responses={s: {"model": ErrorOut} for s in (401, 413, 422, 500, 503, 504)})
async def search(req: SearchRequest, state: StateDep, rag: RagDep) -> Any:
    """Rank passages with the index's stores (default: BM25 + dense fused)."""
    check_query(req.query, state.settings.max_question_chars)
    res = await state.work_gate.run(rag.search, req.query, store=req.store, k=req.k, rerank=req.rerank,
                                    filters=req.filters)
    state.metrics.retrieval_calls.labels(res.store).inc()
    return res.to_dict()
