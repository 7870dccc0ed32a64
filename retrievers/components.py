"""Haystack 3.x components over an adarag index: BM25, dense, n-gram and fused retrievers, a reranker, a selector.

Each component is a thin adapter over the plain classes (`Retriever`, `select_passages`, `load_reranker`):
`__init__` only stores JSON-serialisable settings, `warm_up()` opens the index / loads models (idempotent,
and `run()` calls it when a pipeline did not), `run()` is typed. Documents carry our passage id as `id`,
the retriever or reranker score as `score`, and `passage_id`, `doc_id`, `title`, `start`, `end` in `meta`.
This is the only module of `retrievers` that imports haystack (the `[haystack]` extra).
"""
from __future__ import annotations

import logging
import re
from typing import Any

from indexers.errors import ConfigError, missing, positive_int
from indexers.types import Hit
from retrievers.fusion import RRF_K
from retrievers.search import Retriever
from retrievers.selector import (
    DEFAULT_GAP,
    DEFAULT_MIN_PASSAGES,
    DEFAULT_MIN_SCORE_RATIO,
    DEFAULT_REDUNDANCY,
    Candidate,
    select_passages,
)

try:
    from haystack import Document, component, default_from_dict, default_to_dict
except ImportError as e:  # only a missing haystack: a broken install should fail loudly as itself
    if e.name is None or not e.name.startswith("haystack"):
        raise
    raise missing("haystack", "haystack-ai") from None

__all__ = [
    "AdaragBM25Retriever",
    "AdaragDenseRetriever",
    "AdaragNgramRetriever",
    "AdaragFusedRetriever",
    "AdaragPassageSelector",
    "AdaragReranker",
    "hit_to_document",
    "document_to_hit",
]

log = logging.getLogger(__name__)

_WORD = re.compile(r"\S+")


def hit_to_document(hit: Hit) -> Document:
    """A Haystack Document for one of our hits: id = passage id (the citation id), score kept, offsets in meta."""
    return Document(id=hit.id, content=hit.text, score=hit.score,
                    meta={"passage_id": hit.id, "doc_id": hit.doc_id, "title": hit.title,
                          "start": hit.start, "end": hit.end})


def document_to_hit(doc: Document) -> Hit:
    """The inverse of `hit_to_document`; a Document from elsewhere gets its own id and an empty title."""
    meta = doc.meta or {}
    if doc.score is None:
        raise ConfigError(f"document {doc.id!r} has no score: feed documents from a retriever or reranker")
    return Hit(id=str(meta.get("passage_id", doc.id)), score=float(doc.score), doc_id=str(meta.get("doc_id", "")),
               title=str(meta.get("title") or ""), text=doc.content or "", start=int(meta.get("start", 0)),
               end=int(meta.get("end", 0)))


def _check_top_k(top_k: object) -> int:
    positive_int(top_k, "top_k")
    return top_k


class _IndexRetriever:
    """Shared body of the retriever components: one `Retriever` over an index directory, opened in warm_up."""

    _store = "fused"

    def __init__(self, index: str, top_k: int = 10, threads: int | None = None, depth: int = 100,
                 rrf_k: int = RRF_K, verify: bool = True) -> None:
        if not isinstance(index, str) or not index:
            raise ConfigError(f"index must be the path of an adarag index directory (a str), got {index!r}")
        self.index = index
        self.top_k = _check_top_k(top_k)
        self.threads = threads
        self.depth = depth
        self.rrf_k = rrf_k
        self.verify = verify
        self._retriever: Retriever | None = None

    @property
    def store(self) -> str:
        return self._store

    def warm_up(self) -> None:
        """Open (and verify) the index and load the query embedder if the store needs one; idempotent."""
        if self._retriever is not None:
            return
        from indexers.index import open_index

        ix = open_index(self.index, verify=self.verify)
        try:
            r = Retriever(ix, depth=self.depth, rrf_k=self.rrf_k, threads=self.threads)
            for name in r.stores_of(self.store):  # a store missing from the index fails here, not at the first query
                ix.store_of(name).warm_up(self.threads)
        except BaseException:
            ix.close()
            raise
        self._retriever = r

    def close(self) -> None:
        """Close the index (warm_up reopens it)."""
        if self._retriever is not None:
            self._retriever.index.close()
            self._retriever = None

    def _params(self) -> dict[str, Any]:
        return {"index": self.index, "top_k": self.top_k, "threads": self.threads, "depth": self.depth,
                "rrf_k": self.rrf_k, "verify": self.verify}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, **self._params())

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return default_from_dict(cls, data)

    def _run(self, query: str, top_k: int | None) -> dict[str, list[Document]]:
        self.warm_up()
        k = self.top_k if top_k is None else _check_top_k(top_k)
        return {"documents": [hit_to_document(h) for h in self._retriever.search(query, self.store, k)]}


@component
class AdaragBM25Retriever(_IndexRetriever):
    """Okapi BM25 over an adarag index (scores as rank-bm25's BM25Okapi)."""

    _store = "bm25"

    @component.output_types(documents=list[Document])
    def run(self, query: str, top_k: int | None = None) -> dict[str, list[Document]]:
        return self._run(query, top_k)


@component
class AdaragDenseRetriever(_IndexRetriever):
    """Cosine similarity of the index's embedder (the model the index was built with)."""

    _store = "dense"

    @component.output_types(documents=list[Document])
    def run(self, query: str, top_k: int | None = None) -> dict[str, list[Document]]:
        return self._run(query, top_k)


@component
class AdaragNgramRetriever(_IndexRetriever):
    """SEAL-style n-gram matches in the FM-index over generator tokens."""

    _store = "ngram"

    @component.output_types(documents=list[Document])
    def run(self, query: str, top_k: int | None = None) -> dict[str, list[Document]]:
        return self._run(query, top_k)


@component
class AdaragFusedRetriever(_IndexRetriever):
    """Reciprocal rank fusion over several stores: `stores` is `fused` (= bm25+dense) or e.g. `bm25+dense+ngram`."""

    def __init__(self, index: str, stores: str = "fused", top_k: int = 10, threads: int | None = None,
                 depth: int = 100, rrf_k: int = RRF_K, verify: bool = True) -> None:
        _IndexRetriever.__init__(self, index, top_k=top_k, threads=threads, depth=depth, rrf_k=rrf_k, verify=verify)
        if not isinstance(stores, str) or (stores != "fused" and "+" not in stores):
            raise ConfigError(f"stores must be 'fused' or stores joined by '+' (e.g. bm25+ngram), got {stores!r}; "
                              "for one store use AdaragBM25Retriever / AdaragDenseRetriever / AdaragNgramRetriever")
        self.stores = stores

    @property
    def store(self) -> str:
        return self.stores

    def _params(self) -> dict[str, Any]:
        return {**_IndexRetriever._params(self), "stores": self.stores}  # @component rebuilds the class: no bare super()

    @component.output_types(documents=list[Document])
    def run(self, query: str, top_k: int | None = None) -> dict[str, list[Document]]:
        return self._run(query, top_k)


@component
class AdaragPassageSelector:
    """A variable-size, non-redundant evidence set under a token budget (`retrievers.selector.select_passages`).

    Tokens are counted with `tokenizer`, a registered generator name (its fast tokenizer, loaded offline in
    warm_up) or None for whitespace-separated words (an approximation, for tests and tokenizer-less installs).
    Documents must arrive ranked best first with scores >= 0 (a retriever's or reranker's output).
    """

    def __init__(self, budget_tokens: int = 600, tokenizer: str | None = "qwen-0.5b", max_passages: int | None = None,
                 min_passages: int = DEFAULT_MIN_PASSAGES, gap: float = DEFAULT_GAP,
                 min_score_ratio: float = DEFAULT_MIN_SCORE_RATIO,
                 redundancy: float | None = DEFAULT_REDUNDANCY) -> None:
        if tokenizer is not None and (not isinstance(tokenizer, str) or not tokenizer):
            raise ConfigError(f"tokenizer must be a generator name such as 'qwen-0.5b', or None, got {tokenizer!r}")
        self.budget_tokens = budget_tokens
        self.tokenizer = tokenizer
        self.max_passages = max_passages
        self.min_passages = min_passages
        self.gap = gap
        self.min_score_ratio = min_score_ratio
        self.redundancy = redundancy
        select_passages([], budget_tokens, len, max_passages=max_passages, min_passages=min_passages, gap=gap,
                        min_score_ratio=min_score_ratio, redundancy=redundancy)  # validate the settings now
        self._tok: Any = None

    def warm_up(self) -> None:
        """Load the tokenizer that counts the budget; idempotent."""
        if self._tok is None and self.tokenizer is not None:
            from indexers.ngram import NgramParams, ngram_tokenizer

            self._tok = ngram_tokenizer(NgramParams(tokenizer=self.tokenizer))

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as the generator sees them (no special tokens), or words when tokenizer is None."""
        if self.tokenizer is None:
            return len(_WORD.findall(text))
        self.warm_up()
        return len(self._tok(text, add_special_tokens=False)["input_ids"])

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, budget_tokens=self.budget_tokens, tokenizer=self.tokenizer,
                               max_passages=self.max_passages, min_passages=self.min_passages, gap=self.gap,
                               min_score_ratio=self.min_score_ratio, redundancy=self.redundancy)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AdaragPassageSelector":
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document], dropped=list[Document], tokens_used=int)
    def run(self, documents: list[Document], budget_tokens: int | None = None) -> dict[str, Any]:
        """Chosen documents in rank order; every other one in `dropped` with `meta["drop_reason"]`."""
        budget = self.budget_tokens if budget_tokens is None else budget_tokens
        by_id: dict[str, Document] = {}
        cands = []
        for d in documents:
            h = document_to_hit(d)
            by_id[h.id] = d
            cands.append(Candidate(id=h.id, text=h.text, title=h.title, score=h.score))
        sel = select_passages(cands, budget, self.count_tokens, max_passages=self.max_passages,
                              min_passages=self.min_passages, gap=self.gap, min_score_ratio=self.min_score_ratio,
                              redundancy=self.redundancy)
        dropped = []
        for c, reason in sel.dropped:
            d = by_id[c.id]
            dropped.append(Document(id=d.id, content=d.content, score=d.score,
                                    meta={**(d.meta or {}), "drop_reason": reason}))
        return {"documents": [by_id[c.id] for c in sel.chosen], "dropped": dropped, "tokens_used": sel.tokens_used}


@component
class AdaragReranker:
    """Re-score the top `depth` documents with `retrievers.rerank.load_reranker(reranker)`; scores in [0, 1].

    `reranker` is a spec: none, ltr (the default), ltr:DIR, llm, llm:MODEL or cross-encoder:PATH; `depth` None
    uses the reranker's default.
    """

    def __init__(self, reranker: str = "ltr", depth: int | None = None, top_k: int | None = None,
                 threads: int | None = None, batch_size: int | None = None) -> None:
        if not isinstance(reranker, str) or not reranker.strip():
            raise ConfigError(f"reranker must be a spec such as 'llm' or 'cross-encoder:PATH', got {reranker!r}")
        if top_k is not None:
            _check_top_k(top_k)
        self.reranker = reranker
        self.depth = depth
        self.top_k = top_k
        self.threads = threads
        self.batch_size = batch_size
        self._r: Any = None

    def warm_up(self) -> None:
        """Load the reranker's model; idempotent."""
        if self._r is None:
            from retrievers.rerank import load_reranker

            r = load_reranker(self.reranker, threads=self.threads, batch_size=self.batch_size)
            r.warm_up()
            self._r = r

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, reranker=self.reranker, depth=self.depth, top_k=self.top_k,
                               threads=self.threads, batch_size=self.batch_size)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AdaragReranker":
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(self, query: str, documents: list[Document], top_k: int | None = None) -> dict[str, list[Document]]:
        """Documents re-ranked best first (the top `depth` re-scored, the rest after them), cut to top_k."""
        self.warm_up()
        from retrievers.rerank import DEFAULT_DEPTH

        k = self.top_k if top_k is None else _check_top_k(top_k)
        by_id = {document_to_hit(d).id: d for d in documents}
        hits = self._r.rerank(query, [document_to_hit(d) for d in documents], self.depth or DEFAULT_DEPTH)
        out = [Document(id=by_id[h.id].id, content=by_id[h.id].content, score=h.score, meta=by_id[h.id].meta)
               for h in hits]
        return {"documents": out[:k] if k else out}
