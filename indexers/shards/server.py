"""One shard's side of a sharded search: the shard's index plus the collection-wide state its scores need.

A ShardServer answers in local rows; the coordinator (indexers.shards.sharded) maps them to global rows and
merges. BM25 scores with the collection's statistics (the coordinator sends each query term's collection df);
n-gram search runs in two rounds (counts, then scoring of the n-grams planned from the summed counts); dense
search needs nothing global. It runs in-process or inside a Ray actor (indexers.shards.ray).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexers.bm25 import load_bm25
from indexers.bm25_segments import BM25Deleted, BM25Global, SegmentedBM25
from indexers.index import Index, open_index
from indexers.ngram_search import NgramSearchParams, ngram_counts, score_planned
from indexers.shards.base import ShardSpec
from indexers.shards.builder import BM25_DIR
from indexers.stores.base import Ranked
from indexers.types import Document, Hit

__all__ = ["ShardServer"]

_GLOBAL = "global.json"


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

    def ngram_counts(self, queries: Sequence[Sequence[int]]) -> list[dict[tuple[int, int], int]]:
        ix = self.index.store_of("ngram").index
        return [ngram_counts(ix, q, NgramSearchParams()) for q in queries]

    def ngram(self, queries: Sequence[Sequence[int]], plans: Sequence[Sequence[tuple[int, int, float]]], k: int,
              mask: np.ndarray | None) -> list[Ranked]:
        ix = self.index.store_of("ngram").index
        return [score_planned(ix, q, p, k, NgramSearchParams(), mask) for q, p in zip(queries, plans)]

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
