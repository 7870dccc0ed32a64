"""OpenAI-compatible Chat Completions over the same SDK call, keys, limits, queue and timeouts as /v1/ask.

POST /v1/chat/completions answers as one `chat.completion` JSON, or with `stream: true` as `chat.completion.chunk`
Server-Sent Events in OpenAI's wire format, ending with `data: [DONE]`. GET /v1/models lists the model names:
`adarag` (the controller picks the search mode) and `adarag-<mode>` (none, one_shot, iterative, chain).

The question is the last user message; earlier turns are not used (each request is answered from the index
alone, so a follow-up should name what it refers to). Answers are greedy, grounded decoding: `temperature`,
`top_p` and the like are accepted and ignored (listed in `adarag.ignored`); `n` must be 1.

Citations survive streaming: the answer text carries `[n]` markers, n counting the passages of
`adarag.passages` from 1 (the model's own markers; when it cited nothing, the markers of the passages that
contain the answer are appended), and the response, or the final streamed chunk, carries the `adarag`
extension: citations (id, document id, title, character offsets), passages, mode, controller, trace, decoding
statistics, timings and the answer id for /v1/feedback.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from indexers.errors import ConfigError
from retrievers.search import check_query
from services.deps import RagDep, StateDep
from services.gate import GateTimeout
from services.routes.ask import record_answer
from services.schemas import QUESTION_MAX, ErrorOut
from services.sse import stream_events

__all__ = ["MODEL_MODES", "router"]

router = APIRouter(tags=["openai"])

MODEL_MODES: dict[str, str | None] = {"adarag": None, "adarag-none": "none", "adarag-one_shot": "one_shot",
                                      "adarag-iterative": "iterative", "adarag-chain": "chain"}
"""Model name -> search mode (None: the controller decides per question)."""

_ERRORS = {s: {"model": ErrorOut} for s in (401, 413, 422, 500, 503, 504)}


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """The Chat Completions request; unknown OpenAI parameters are accepted and ignored (`adarag.ignored`)."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(max_length=64, description=f"one of {', '.join(MODEL_MODES)}")
    messages: list[ChatMessage] = Field(min_length=1, max_length=256)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1)


def _text(content: str | list[dict[str, Any]] | None) -> str:
    """A message's text: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or () if isinstance(p, dict) and p.get("type") == "text")


def _question(req: ChatRequest) -> str:
    users = [m for m in req.messages if m.role == "user"]
    if not users:
        raise ConfigError("messages hold no user message: the last user message is the question")
    question = _text(users[-1].content).strip()
    if not question:
        raise ConfigError("the last user message is empty: put the question there")
    return question


def _cited_markers(d: dict[str, Any]) -> str:
    """' [i]' markers for citations the model did not write itself (found by overlap), else ''."""
    if d.get("citation_source") == "model":
        return ""
    index = {p["id"]: i for i, p in enumerate(d["passages"], 1)}
    return "".join(f" [{index[c]}]" for c in d["citations"] if c in index)


def _extension(d: dict[str, Any], ignored: list[str]) -> dict[str, Any]:
    index = {p["id"]: i for i, p in enumerate(d["passages"], 1)}
    by_id = {p["id"]: p for p in d["passages"]}
    spans = {s["id"]: s for s in d.get("citation_spans", [])}
    return {"answer": d["answer"], "mode": d["mode"], "citation_source": d["citation_source"],
            "citations": [{"n": index[c], "id": c, "doc_id": by_id[c].get("doc_id"), "title": by_id[c].get("title"),
                           "start": spans.get(c, {}).get("start"), "end": spans.get(c, {}).get("end")}
                          for c in d["citations"] if c in index],
            "passages": [{"n": i, **p} for i, p in enumerate(d["passages"], 1)],
            "controller": d.get("controller", {}), "trace": d.get("trace", []), "decoding": d.get("decoding", {}),
            "timings": d.get("timings", {}), "answer_id": d.get("answer_id", ""), "generator": d.get("generator"),
            "ignored": ignored}


def _usage(d: dict[str, Any]) -> dict[str, int]:
    p, c = int(d.get("n_prompt_tokens") or 0), int(d.get("n_new_tokens") or 0)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


@router.get("/v1/models")
async def models() -> dict[str, Any]:
    """The model names this service answers to (each a search mode over the same index and generator)."""
    return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "adarag"}
                                       for m in MODEL_MODES]}


@router.post("/v1/chat/completions", responses={**_ERRORS, 200: {"content": {"text/event-stream": {}}}})
async def chat_completions(req: ChatRequest, state: StateDep, rag: RagDep) -> Any:
    """Answer the last user message from the index, OpenAI-style; citations in the text and in `adarag`."""
    s = state.settings
    if req.model not in MODEL_MODES:
        raise ConfigError(f"unknown model {req.model!r}: use one of {', '.join(MODEL_MODES)} (GET /v1/models)")
    if req.n not in (None, 1):
        raise ConfigError(f"n={req.n}: this service returns one answer per request; use n=1")
    question = _question(req)
    check_query(question, min(s.max_question_chars, QUESTION_MAX), what="question")
    max_new = req.max_completion_tokens or req.max_tokens or min(256, s.max_new_tokens_limit)
    if max_new > s.max_new_tokens_limit:
        raise ConfigError(f"max_tokens {max_new} is over this service's limit of {s.max_new_tokens_limit}: ask for "
                          "fewer")
    extra = req.model_extra or {}
    ignored = sorted(k for k in extra if k != "stream_options")
    kw: dict[str, Any] = {"max_new_tokens": max_new}
    if MODEL_MODES[req.model] is not None:
        kw["mode"] = MODEL_MODES[req.model]
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    head = {"id": cid, "created": created, "model": req.model}
    cancel = threading.Event()
    if not req.stream:
        try:
            ans = await state.ask_gate.run(rag.ask, question, cancel=cancel, **kw)
        except GateTimeout:
            cancel.set()
            raise
        d = record_answer(state, ans, None)
        content = ans.raw_text.strip() + _cited_markers(d)
        return {**head, "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": _finish(d, max_new), "logprobs": None}],
                "usage": _usage(d), "adarag": _extension(d, ignored)}
    state.ask_gate.try_acquire()  # a full queue is a 503 before any byte of the stream
    chunk = {**head, "object": "chat.completion.chunk"}
    options = extra.get("stream_options")
    usage = isinstance(options, dict) and bool(options.get("include_usage"))

    def data(obj: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()

    started = [False]

    def delta(text: str) -> bytes:
        first = b"" if started[0] else data({**chunk, "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
        started[0] = True
        return first + data({**chunk, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})

    def final(d: dict[str, Any]) -> bytes:
        tail = _cited_markers(d)
        out = delta(tail) if tail or not started[0] else b""
        out += data({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": _finish(d, max_new)}],
                     "adarag": _extension(d, ignored)})
        if usage:
            out += data({**chunk, "choices": [], "usage": _usage(d)})
        return out + b"data: [DONE]\n\n"

    def error(status: int, body: dict[str, Any]) -> bytes:
        return data({"error": {"message": body.get("error", ""), "type": body.get("type", ""), "code": status,
                               "param": None}}) + b"data: [DONE]\n\n"

    events = stream_events(state.ask_gate, lambda: iter(rag.ask(question, stream=True, cancel=cancel, **kw)),
                           lambda ans: record_answer(state, ans, None), cancel=cancel, frame_delta=delta,
                           frame_final=final, frame_error=error)
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _finish(d: dict[str, Any], max_new: int) -> str:
    return "length" if int(d.get("n_new_tokens") or 0) >= max_new else "stop"
