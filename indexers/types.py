"""Shared value types: a stored document, a retrievable passage, a search hit; how a model reads a passage."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Document", "Passage", "Hit", "passage_text"]


@dataclass(frozen=True)
class Document:
    """A corpus document as the user gave it. `metadata` must be JSON-serialisable."""

    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Passage:
    """The unit of retrieval: a document, or a span of a long one (`id` is `DOCID#N` then).

    `start`/`end` are character offsets of `text` inside the document's text.
    """

    id: str
    doc_id: str
    text: str
    title: str = ""
    start: int = 0
    end: int = 0


@dataclass(frozen=True)
class Hit:
    """One ranked passage returned by a retriever. `score` is retriever-specific (higher is better)."""

    id: str
    score: float
    doc_id: str = ""
    title: str = ""
    text: str = ""
    start: int = 0
    end: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The one serialised form of a hit (SDK answers, HTTP, CLI --json, eval predictions)."""
        return {"id": self.id, "doc_id": self.doc_id, "score": float(self.score), "title": self.title,
                "text": self.text, "start": self.start, "end": self.end}


def passage_text(title: str, text: str) -> str:
    """A passage as every model reads it: `Title: text`, whitespace runs collapsed (the text alone without a
    title, the title alone without text). The prompt lists exactly this, the selector's token budget counts it
    and rerankers score it."""
    body = " ".join(text.split())
    title = " ".join(title.split())
    return f"{title}: {body}" if title and body else title or body
