"""POST /v1/ask: a grounded answer as JSON, or streamed as Server-Sent Events."""
from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from indexers.errors import ConfigError
from retrievers.search import check_query
from services.deps import RagDep, ServiceState, StateDep
from services.gate import GateTimeout
from services.schemas import AnswerOut, AskRequest, ErrorOut
from services.sse import stream_events

__all__ = ["record_answer", "router"]

router = APIRouter(tags=["ask"])

_ERRORS = {s: {"model": ErrorOut} for s in (401, 404, 413, 422, 500, 503, 504)}
_SSE_DOC = {"text/event-stream": {"schema": {"type": "string", "description":
            "with stream=true: `event: token` frames ({\"text\"}), then `event: answer` (the JSON answer) "
            "or `event: error` ({\"error\", \"type\", \"status\"})"}}}


def record_answer(state: ServiceState, ans: Any, store: str | None) -> dict[str, Any]:
    """The wire form of an SDK Answer (without the raw model text), recording its tokens and speed."""
    d = ans.to_dict()
    d.pop("raw_text", None)
    m = state.metrics
    n_new = int(d.get("n_new_tokens") or 0)
    gen_s = float((d.get("timings") or {}).get("generate") or 0.0)
    m.tokens.inc(n_new)
    if n_new and gen_s > 0:
        m.tokens_per_s.observe(n_new / gen_s)
    m.retrieval_calls.labels(store or "default").inc()
    return d


@router.post("/v1/ask", response_model=AnswerOut, responses={**_ERRORS, 200: {"content": _SSE_DOC}})
async def ask(req: AskRequest, state: StateDep, rag: RagDep) -> Any:
    """Answer a question from the index with citations; `stream: true` sends tokens as they are generated."""
    s = state.settings
    check_query(req.question, s.max_question_chars, what="question")
    if req.max_new_tokens > s.max_new_tokens_limit:
        raise ConfigError(f"max_new_tokens {req.max_new_tokens} is over this service's limit of "
                          f"{s.max_new_tokens_limit}: ask for fewer")
    kw: dict[str, Any] = {"k": req.k, "store": req.store, "max_new_tokens": req.max_new_tokens,
                          "filters": req.filters}
    if req.mode is not None:
        kw["mode"] = req.mode
    if req.budget is not None:
        kw["budget"] = req.budget.model_dump()
    cancel = threading.Event()  # set on timeout or disconnect: the SDK stops at its next decoding step
    if not req.stream:
        try:
            ans = await state.ask_gate.run(rag.ask, req.question, cancel=cancel, **kw)
        except GateTimeout:
            cancel.set()
            raise
        return record_answer(state, ans, req.store)
    state.ask_gate.try_acquire()  # a full queue is a 503 before any byte of the stream
    events = stream_events(state.ask_gate, lambda: iter(rag.ask(req.question, stream=True, cancel=cancel, **kw)),
                           lambda ans: record_answer(state, ans, req.store), cancel=cancel)
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
