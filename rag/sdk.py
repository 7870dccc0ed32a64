"""The SDK facade: `RAG.open(index_dir)`, then `search(query)` and `ask(question)`."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from indexers.errors import ConfigError
from indexers.index import Index, open_index
from indexers.text import plain_words
from indexers.types import Hit
from retrievers.search import MAX_QUERY_CHARS, Retriever, check_query

__all__ = ["SearchResult", "Answer", "RAG", "DEFAULT_GENERATOR"]

log = logging.getLogger(__name__)

DEFAULT_GENERATOR = "qwen-1.5b"


@dataclass(frozen=True)
class SearchResult:
    """Ranked passages for one query; `timings` in seconds."""

    query: str
    store: str
    hits: list[Hit]
    timings: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "store": self.store, "timings": self.timings,
                "hits": [{"id": h.id, "score": h.score, "title": h.title, "text": h.text, "doc_id": h.doc_id}
                         for h in self.hits]}


@dataclass(frozen=True)
class Answer:
    """A grounded answer. `citations` are passage ids the answer rests on, best first; `timings` in seconds.

    `citation_source` says how they were found: "model" (the generator cited [n] markers), "overlap" (no
    markers; the retrieved passages that contain the answer text), or "none".
    """

    question: str
    answer: str
    citations: list[str]
    passages: list[Hit]
    mode: Literal["one_shot"]
    timings: dict[str, float]
    generator: str
    n_prompt_tokens: int = 0
    n_new_tokens: int = 0
    citation_source: Literal["model", "overlap", "none"] = "none"
    raw_text: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passages"] = [{"id": h.id, "score": h.score, "title": h.title, "text": h.text} for h in self.passages]
        return d


def _overlap_citations(answer: str, hits: list[Hit]) -> list[str]:
    """Passages whose text contains the (normalised) answer: attribution when the model cited nothing."""
    a = plain_words(answer)
    if not a:
        return []
    return [h.id for h in hits if a in plain_words(f"{h.title} {h.text}")]


class RAG:
    """An opened index plus (lazily) its query embedder and generator. `ask` is serialised by a lock."""

    def __init__(self, index: Index, *, generator: str = DEFAULT_GENERATOR, threads: int | None = None,
                 max_query_chars: int = MAX_QUERY_CHARS) -> None:
        self.index = index
        self.retriever = Retriever(index, max_query_chars=max_query_chars, threads=threads)
        self.generator_name = generator
        self.threads = threads
        self.max_query_chars = max_query_chars
        self._generator = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, index_dir: str | Path, *, generator: str = DEFAULT_GENERATOR, threads: int | None = None,
             verify: bool = True, max_query_chars: int = MAX_QUERY_CHARS) -> "RAG":
        """Open (and by default checksum-verify) an index built by `adarag index`."""
        if not isinstance(index_dir, (str, Path)):
            raise TypeError(f"index_dir must be a str or Path, got {type(index_dir).__name__}")
        if not isinstance(generator, str):
            raise TypeError(f"generator must be a model name or path (str), got {type(generator).__name__}")
        return cls(open_index(index_dir, verify=verify), generator=generator, threads=threads,
                   max_query_chars=max_query_chars)

    @property
    def generator(self):
        """The causal LM, loaded (and on first use converted and cached) on first access."""
        if self._generator is None:
            from rag.generator import Generator

            self._generator = Generator.load(self.generator_name, threads=self.threads)
        return self._generator

    def search(self, query: str, *, store: str | None = None, k: int = 10) -> SearchResult:
        t = time.perf_counter()
        hits = self.retriever.search(query, store, k)
        return SearchResult(query, store or self.retriever.default_store, hits,
                            {"retrieve": time.perf_counter() - t})

    def ask(self, question: str, *, k: int = 4, store: str | None = None, max_new_tokens: int = 48) -> Answer:
        """One-shot grounded answer: retrieve k passages, prompt the generator with them, parse citations."""
        from rag.prompts import grounded_messages, parse_citations

        check_query(question, self.max_query_chars, what="question")
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
        t0 = time.perf_counter()
        hits = self.retriever.search(question, store, k)
        t1 = time.perf_counter()
        gen = self.generator
        t2 = time.perf_counter()
        with self._lock:
            out = gen.generate(grounded_messages(question, [(h.id, h.title, h.text) for h in hits]),
                               max_new_tokens=max_new_tokens)
        t3 = time.perf_counter()
        text, cited = parse_citations(out.text, [h.id for h in hits])
        source: Literal["model", "overlap", "none"] = "model" if cited else "none"
        if not cited:
            cited = _overlap_citations(text, hits)
            source = "overlap" if cited else "none"
        timings = {"retrieve": t1 - t0, "load_generator": t2 - t1, "generate": t3 - t2, "total": t3 - t0}
        return Answer(question, text, cited, hits, "one_shot", timings, self.generator_name,
                      out.n_prompt_tokens, out.n_new_tokens, source, out.text)

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> "RAG":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
