"""indexers.stores.bm25 against rank_bm25.BM25Okapi (scores bit-equal but where a query term's idf is floored:
there rtol 1e-14, see tests/support/okapi_oracle.py; hits are passages holding a query term)."""
from __future__ import annotations

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from indexers.bm25 import BM25Params
from indexers.errors import IndexFormatError
from indexers.stores.base import LoadEnv
from indexers.stores.bm25 import BM25Store
from indexers.text import tokenize
from tests.support.okapi_oracle import assert_okapi_close, okapi_oracle
from tests.support.store_conformance import PASSAGES, StoreConformance, offline_encoders


def _docs(passages):
    return [tokenize(f"{p.title} {p.text}") for p in passages]


class TestBM25Store(StoreConformance):
    kind = BM25Store
    params = BM25Params()

    def reference(self, query, passages):
        docs = _docs(passages)
        q = tokenize(query)
        scores = np.zeros(len(docs))
        if q:
            plain, scores, floored = okapi_oracle(docs)(q)
            assert_okapi_close(scores, plain, scores, floored)  # the ranking below is then exact for adarag
        hit = np.array([bool(set(q) & set(d)) for d in docs])
        rows = np.flatnonzero(hit)
        order = np.lexsort((rows, -scores[rows]))
        return rows[order].astype(np.int64), scores[rows[order]]

    def test_stats_are_what_bm25_needs(self, store):
        ref = BM25Okapi(_docs(PASSAGES))
        s = store.stats()
        assert s.n_rows == ref.corpus_size and s.total_length / s.n_rows == ref.avgdl
        df = {}
        for d in _docs(PASSAGES):
            for t in set(d):
                df[t] = df.get(t, 0) + 1
        assert dict(s.df) == df and len(s.df) == len(df)

    def test_an_index_from_another_analyzer_is_refused(self, built):
        with pytest.raises(IndexFormatError, match="analyzer 'v0'.*--rebuild"):
            BM25Store.load(built, LoadEnv(built.parent, offline_encoders(), {"analyzer": "v0"}))
