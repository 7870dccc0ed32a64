"""Search an opened index with BM25, dense embeddings, or both fused by reciprocal rank fusion."""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from indexers.errors import ConfigError, positive_int
from indexers.index import Index
from indexers.stores import STORE_KINDS
from indexers.text import lone_surrogate
from indexers.types import Hit
from retrievers.fusion import RRF_K, reciprocal_rank_fusion

__all__ = ["StoreName", "SINGLE_STORES", "MAX_QUERY_CHARS", "check_query", "Retriever"]

log = logging.getLogger(__name__)

StoreName = Literal["bm25", "dense", "ngram", "fused"]
"""One store, `fused` (= `bm25+dense`), or any `+`-joined set of stores, fused by reciprocal rank fusion."""
SINGLE_STORES = tuple(STORE_KINDS)
MAX_QUERY_CHARS = 8192


def check_query(query: object, max_chars: int = MAX_QUERY_CHARS, what: str = "query") -> str:
    """Validate a user query: a non-blank str of at most `max_chars` characters, valid Unicode."""
    if not isinstance(query, str):
        raise TypeError(f"{what} must be a str, got {type(query).__name__}")
    if not query.strip():
        raise ConfigError(f"{what} is empty: pass some text to search for")
    if len(query) > max_chars:
        raise ConfigError(
            f"{what} is {len(query):,} characters, over the limit of {max_chars:,}: shorten it, or raise the "
            "limit with max_query_chars= (SDK) / --max-query-chars (CLI)"
        )
    if lone_surrogate(query):
        raise ConfigError(
            f"{what} has an unpaired surrogate (a broken \\ud8xx escape, or bytes decoded with surrogateescape), "
            "which no tokenizer reads: pass valid Unicode text"
        )
    return query


class Retriever:
    """Runs the stores of one index; `depth` is how many candidates each store feeds into fusion."""

    def __init__(self, index: Index, *, depth: int = 100, rrf_k: int = RRF_K,
                 max_query_chars: int = MAX_QUERY_CHARS, threads: int | None = None) -> None:
        self.index = index
        self.depth = depth
        self.rrf_k = rrf_k
        self.max_query_chars = max_query_chars
        self.threads = threads

    @property
    def default_store(self) -> str:
        s = self.index.stores
        return "fused" if "bm25" in s and "dense" in s else s[0]

    def stores_of(self, store: str | None) -> tuple[str, ...]:
        """The single stores a store spec names: `bm25`, `fused` -> (bm25, dense), `bm25+ngram`, ..."""
        store = store or self.default_store
        if not isinstance(store, str):
            raise TypeError(f"store must be a str, got {type(store).__name__}")
        parts = ("bm25", "dense") if store == "fused" else tuple(store.split("+"))
        if any(p not in SINGLE_STORES for p in parts) or len(set(parts)) != len(parts):
            raise ConfigError(f"unknown store {store!r}; valid: {', '.join(SINGLE_STORES)}, fused, "
                              "or stores joined by '+' (e.g. bm25+ngram)")
        for p in parts:
            self.index.store_of(p)  # a store the index lacks is a ConfigError naming the ones it has
        return parts

    def rows_batch(self, queries: Sequence[str], store: str | None = None, k: int = 10,
                   filters: Mapping[str, Any] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query: (rows [k'] int64, scores [k'] float) ranked best first. `filters` (Haystack syntax, on
        document metadata, `id` or `content`) restricts every store to matching passages, exactly: the top-k
        of the matching passages, never a shorter list while enough match."""
        if isinstance(queries, str) or not isinstance(queries, Sequence):
            raise TypeError(f"queries must be a sequence of str, got {type(queries).__name__}")
        positive_int(k, "k")
        queries = [check_query(q, self.max_query_chars) for q in queries]
        parts = self.stores_of(store)
        mask = self.index.filter_mask(filters)
        if len(parts) == 1:
            return self.index.search_stores(parts, queries, k, mask, self.threads)[0]
        depth = max(k, self.depth)
        per_store = self.index.search_stores(parts, queries, depth, mask, self.threads)
        out = []
        for lists in zip(*per_store):
            fused = reciprocal_rank_fusion([r.tolist() for r, _ in lists], k=self.rrf_k)[:k]
            out.append((np.array([r for r, _ in fused], np.int64), np.array([s for _, s in fused])))
        return out

    def search_batch(self, queries: Sequence[str], store: str | None = None, k: int = 10,
                     filters: Mapping[str, Any] | None = None) -> list[list[Hit]]:
        return [self.index.hits(r, s) for r, s in self.rows_batch(queries, store, k, filters)]

    def search(self, query: str, store: str | None = None, k: int = 10,
               filters: Mapping[str, Any] | None = None) -> list[Hit]:
        """Top-k passages for one query, with their text (only of documents matching `filters`, if given)."""
        return self.search_batch([query], store, k, filters)[0]  # search_batch validates the query
