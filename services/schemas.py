"""HTTP request/response models (pydantic), kept apart from the SDK's dataclasses so the wire format is explicit."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from indexers.ingest import check_doc_id

__all__ = [
    "AskRequest", "SearchRequest", "DocumentIn", "DocumentsRequest", "FeedbackRequest",
    "HitOut", "SearchResponse", "AnswerOut", "DocumentOut", "IngestResponse", "DeleteResponse",
    "ErrorOut", "HealthOut", "QUESTION_MAX", "ID_MAX", "TEXT_MAX",
]

QUESTION_MAX = 2048  # characters; a longer question is a 422 (the service may lower it, never raise it)
ID_MAX = 512
TEXT_MAX = 200_000   # characters per document; the body limit (413) usually bites first

_Strict = ConfigDict(extra="forbid", strict=True)


_FILTERS = ('only documents matching this Haystack filter, e.g. {"field": "meta.year", "operator": ">=", '
            '"value": 2000}; logical: {"operator": "AND", "conditions": [...]}')


class BudgetIn(BaseModel):
    """A per-request cost cap (rag.control.Budget): the controller picks the best mode that fits."""

    model_config = _Strict
    retrieval_calls: int | None = Field(default=None, ge=0, le=100, description="most retrieval calls")
    seconds: float | None = Field(default=None, gt=0, le=3600, description="about this many seconds of work")


class AskRequest(BaseModel):
    """POST /v1/ask. `stream: true` answers with Server-Sent Events (`token`*, then `answer` or `error`)."""

    model_config = _Strict
    question: str = Field(min_length=1, max_length=QUESTION_MAX)
    mode: str | None = Field(default=None, max_length=64, description="search mode; default: the SDK's")
    k: int | None = Field(default=None, ge=1, le=50,
                          description="passages in the prompt; default: the selector chooses under a token budget")
    store: str | None = Field(default=None, max_length=64, description="bm25, dense, ngram, fused or a+b")
    max_new_tokens: int = Field(default=48, ge=1, le=4096)
    stream: bool = False
    filters: dict[str, Any] | None = Field(default=None, description=_FILTERS)
    budget: BudgetIn | None = Field(default=None, description="cost cap: the controller picks the best mode "
                                    "that fits; a fixed mode that cannot fit is a 422")


class SearchRequest(BaseModel):
    """POST /v1/search."""

    model_config = _Strict
    query: str = Field(min_length=1, max_length=QUESTION_MAX)
    store: str | None = Field(default=None, max_length=64)
    k: int = Field(default=10, ge=1, le=1000)
    rerank: bool = Field(default=False, description="re-score with the service's reranker, if it has one")
    filters: dict[str, Any] | None = Field(default=None, description=_FILTERS)


class DocumentIn(BaseModel):
    """One document to add or replace (same id = update)."""

    model_config = _Strict
    id: str = Field(min_length=1, max_length=ID_MAX)
    text: str = Field(min_length=1, max_length=TEXT_MAX)
    title: str = Field(default="", max_length=ID_MAX)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _usable_id(cls, v: str) -> str:
        """The SDK's and the CLI's id rule (no control characters, no '#', ...), as a 422 naming the field."""
        return check_doc_id(v)


class DocumentsRequest(BaseModel):
    """POST /v1/documents: all or nothing (a failure leaves the index as it was)."""

    model_config = _Strict
    documents: list[DocumentIn] = Field(min_length=1)


class FeedbackRequest(BaseModel):
    """POST /v1/feedback: was the answer `answer_id` correct?"""

    model_config = _Strict
    answer_id: str = Field(min_length=1, max_length=ID_MAX)
    correct: bool


class HitOut(BaseModel):
    id: str
    score: float
    title: str = ""
    text: str = ""
    doc_id: str = ""


class SearchResponse(BaseModel):
    query: str
    store: str
    hits: list[HitOut]
    timings: dict[str, float]


class AnswerOut(BaseModel):
    """The SDK's Answer.to_dict(); the named fields are guaranteed, the rest (trace, decoding stats) pass through."""

    model_config = ConfigDict(extra="allow")
    question: str
    answer: str
    citations: list[Any]
    mode: str
    timings: dict[str, float]


class DocumentOut(BaseModel):
    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class IngestResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    added: int
    updated: int
    unchanged: int
    n_docs: int


class DeleteResponse(BaseModel):
    deleted: int


class ErrorOut(BaseModel):
    """Every error body: a message that says what to do, and the error's type. Never a stack trace."""

    error: str
    type: str


class HealthOut(BaseModel):
    status: str
