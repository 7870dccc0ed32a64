"""indexers.stores.dense against a numpy inner product over the hash embedder's vectors (atol 1e-5)."""
from __future__ import annotations

import numpy as np

from indexers.dense import DenseParams
from indexers.embedders import HashEmbedder
from indexers.stores.dense import DenseStore
from tests.support.store_conformance import StoreConformance


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


def test_hnsw_segments_with_deletions_keep_recall_against_exact_flat():
    """Issue #17: HNSW segments are searched each and merged by score; over clustered vectors in 4 segments with
    deleted rows, recall@10 against the exact flat search of the live rows stays >= 0.9, no deleted row is
    returned, and every returned score is the true inner product."""
    from indexers.dense import DenseIndex
    from indexers.ngram import NgramParams
    from indexers.stores.encoders import Encoders

    rng = np.random.default_rng(3)
    centers = rng.standard_normal((20, 32)).astype(np.float32)
    x = centers[rng.integers(0, 20, 4000)] + 0.1 * rng.standard_normal((4000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.integers(0, 4000, 60)] + 0.05 * rng.standard_normal((60, 32)).astype(np.float32)
    live = rng.random(4000) > 0.2
    enc = Encoders(DenseParams(embedder="hash"), NgramParams())
    bounds = [0, 700, 1900, 2600, 4000]
    parts = list(zip(bounds, bounds[1:]))

    def store(index: str) -> DenseStore:
        p = DenseParams(embedder="hash", index=index, use_gpu=False)
        return DenseStore([(DenseIndex(x[a:b], p), live[a:b]) for a, b in parts], enc)

    exact, approx = store("flat").search_batch(list(q), 10), store("hnsw").search_batch(list(q), 10)
    recall = np.mean([len(set(a[0].tolist()) & set(e[0].tolist())) / 10 for a, e in zip(approx, exact)])
    assert recall >= 0.9
    for (rows, scores), qv in zip(approx, q):
        assert live[rows].all() and len(rows) == 10
        assert np.allclose(scores, x[rows] @ qv, atol=1e-5)
    ref = np.flatnonzero(live)[np.argsort(-(x[live] @ q[0]), kind="stable")[:10]]
    assert exact[0][0].tolist() == ref.tolist()
