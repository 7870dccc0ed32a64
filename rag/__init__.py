"""adarag's SDK: the thin facade users import.

    from rag import RAG
    r = RAG.open("my-index")
    r.search("query").hits
    r.ask("question").answer
"""
from indexers.errors import (
    Cancelled,
    ConfigError,
    CorpusError,
    IndexFormatError,
    MissingDependencyError,
    ModelError,
    NotFoundError,
    RagError,
    ServiceError,
)
from indexers.types import Document, Hit, Passage
from rag.sdk import RAG, Answer, SearchResult

__all__ = [
    "RAG", "Answer", "SearchResult", "Document", "Passage", "Hit",
    "RagError", "IndexFormatError", "CorpusError", "MissingDependencyError", "ConfigError", "ModelError",
    "ServiceError", "Cancelled", "NotFoundError",
]
