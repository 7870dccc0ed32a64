"""indexers.stores.dense against a numpy inner product over the hash embedder's vectors (atol 1e-5)."""
from __future__ import annotations

import numpy as np

from indexers.dense import DenseParams
from indexers.embedders import HashEmbedder
from indexers.stores.dense import DenseStore
from tests.indexers.stores.conformance import StoreConformance


class TestDenseStore(StoreConformance):
    kind = DenseStore
    params = DenseParams(embedder="hash", use_gpu=False)
    atol = 1e-5

    def reference(self, query, passages):
        emb = HashEmbedder(32)
        vecs = emb.embed_passages([f"{p.title}: {p.text}" if p.title else p.text for p in passages])
        scores = vecs.astype(np.float64) @ emb.embed_queries([query])[0].astype(np.float64)
        rows = np.lexsort((np.arange(len(scores)), -scores))
        return rows.astype(np.int64), scores[rows]


class TestDenseHNSWStore(TestDenseStore):
    """HNSW on 11 vectors visits every node, so it is exact here; masked search is exact brute force anyway."""

    params = DenseParams(embedder="hash", index="hnsw", use_gpu=False)
