"""One shard's side of a sharded search: the shard's index plus the collection-wide state its scores need.

A ShardServer answers in local rows; the coordinator (indexers.shards.sharded) maps them to global rows and
merges. BM25 scores with the collection's statistics (the coordinator sends each query term's collection df);
n-gram search runs in two rounds (counts, then scoring of the n-grams planned from the summed counts; one
round when there is a single shard); dense search needs nothing global. `search` does several stores' work in
one call, so a fused query costs one round trip per round, not one per store. It runs in-process or inside a
Ray actor (indexers.shards.ray).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexers.bm25 import load_bm25
from indexers.bm25_segments import BM25Deleted, BM25Global, SegmentedBM25
from indexers.index import Index, open_index
from indexers.ngram_search import NgramSearchParams, locate_ngrams, ngram_counts, score_planned, search
from indexers.shards.base import ShardSpec
from indexers.shards.builder import BM25_DIR
from indexers.stores.base import Ranked
from indexers.types import Document, Hit

__all__ = ["ShardServer"]

_GLOBAL = "global.json"
_FOUND_CACHE = 256  # queries whose located n-grams a server keeps between the counts and the scoring round
_SEARCHES = frozenset({"bm25", "dense", "ngram_counts", "ngram", "ngram_alone"})


class ShardServer:
    """Searches one shard of a sharded index (local rows, collection-wide scores)."""

    def __init__(self, spec: ShardSpec) -> None:
        self.name = spec.name
        root = Path(spec.root)
        self.index: Index = open_index(root / spec.dir, verify=spec.verify)
        self._bm25: SegmentedBM25 | None = None
        if "bm25" in self.index.stores:
            stats = BM25Global.load(root / spec.state / BM25_DIR / _GLOBAL)
            segs = []
            for seg in self.index.segments:
                part = seg.part("bm25")
                segs.append((load_bm25(part.directory), BM25Deleted.load(part.deleted) if part.deleted else None,
                             part.live))
            self._bm25 = SegmentedBM25(segs, stats, segs[0][0].params, shard=True)
        self._found: dict[tuple[int, ...], Any] = {}  # query token ids -> locate_ngrams (counts -> scoring)

    def ping(self) -> str:
        return self.name

    def info(self) -> dict[str, int]:
        """Rows (deleted ones included) and the n-gram store's live tokens (SEAL's F_total adds over shards)."""
        n_tokens = self.index.store_of("ngram").index.n_tokens if "ngram" in self.index.stores else 0
        return {"n_rows": len(self.index.ids), "n_tokens": int(n_tokens)}

    def filter_mask(self, filters: Mapping[str, Any] | None) -> np.ndarray | None:
        return self.index.filter_mask(filters)

    def bm25(self, queries: Sequence[Sequence[str]], dfs: Sequence[Mapping[str, int]], k: int,
             mask: np.ndarray | None) -> list[Ranked]:
        return self._bm25.search_batch(queries, k, mask, dfs=dfs)

    def dense(self, queries: np.ndarray, k: int, mask: np.ndarray | None) -> list[Ranked]:
        return self.index.store_of("dense").search_batch(queries, k, mask)

    def search(self, requests: Mapping[str, tuple[Any, ...]]) -> dict[str, Any]:
        """Several searches of one batch in one call: request name (bm25, dense, ngram_counts, ngram,
        ngram_alone) -> that method's arguments; returns name -> its answer."""
        bad = set(requests) - _SEARCHES
        if bad:
            raise ValueError(f"unknown shard searches {sorted(bad)}")
        return {name: getattr(self, name)(*args) for name, args in requests.items()}

    def ngram_counts(self, queries: Sequence[Sequence[int]]) -> list[dict[tuple[int, int], int]]:
        ix, params = self.index.store_of("ngram").index, NgramSearchParams()
        if len(self._found) + len(queries) > _FOUND_CACHE:
            self._found.clear()
        out = []
        for q in queries:
            found = locate_ngrams(ix, q, params)
            self._found[tuple(q)] = found  # the scoring round of this query reuses the backward searches
            out.append(ngram_counts(ix, q, params, found))
        return out

    def ngram(self, queries: Sequence[Sequence[int]], plans: Sequence[Sequence[tuple[int, int, float]]], k: int,
              mask: np.ndarray | None) -> list[Ranked]:
        ix, params = self.index.store_of("ngram").index, NgramSearchParams()
        return [score_planned(ix, q, p, k, params, mask, self._found.pop(tuple(q), None) if p else {})
                for q, p in zip(queries, plans)]

    def ngram_alone(self, queries: Sequence[Sequence[int]], k: int, mask: np.ndarray | None) -> list[Ranked]:
        """n-gram search when this is the only shard: its counts are the collection's, so it plans itself."""
        ix = self.index.store_of("ngram").index
        return [search(ix, q, k, NgramSearchParams(), mask) for q in queries]

    def ngram_count(self, pattern: Sequence[int]) -> int:
        return int(self.index.store_of("ngram").index.count(list(pattern)))

    def hits(self, rows: Sequence[int], scores: Sequence[float]) -> list[Hit]:
        return self.index.hits(rows, scores)

    def documents(self, ids: Sequence[str]) -> list[Document]:
        """The stored documents among `ids` that this generation of the shard holds."""
        found = self.index.store.get_documents(list(ids), missing="skip")
        return [d for d in found if self.index.holds_document(d.id)]

    def close(self) -> None:
        self.index.close()
