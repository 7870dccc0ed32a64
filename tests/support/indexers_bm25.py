"""Helpers shared by tests/unit/indexers/test_bm25.py and tests/integration/indexers/test_bm25.py."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from indexers.bm25 import BM25Params, build_bm25
from tests.support.okapi_oracle import assert_okapi_close, okapi_oracle
from hypothesis import strategies as st
from indexers.bm25 import BM25Params, build_bm25


words = st.sampled_from(list("abcdefg"))  # small vocab: ties, negative idfs, duplicates


queries = st.lists(words | st.just("zzz"), max_size=6)  # "zzz" is never in the vocab


def _check_against_rank_bm25(corpus, qs, k, params=BM25Params()):
    """Rows ranked by (score desc, row asc) over docs holding a query term; scores as `assert_okapi_close`."""
    index = build_bm25(corpus, params)
    doc_sets = [set(d) for d in corpus]
    oracle = okapi_oracle(corpus, params.k1, params.b, params.epsilon)
    for q, (ids, scores) in zip(qs, index.search_batch(qs, k)):
        plain, fixed, floored = oracle(q)
        cand = np.array([i for i, d in enumerate(doc_sets) if d & set(q)], dtype=np.int64)
        top = cand[np.lexsort((cand, -fixed[cand]))[:k]]
        np.testing.assert_array_equal(ids, top)
        assert_okapi_close(scores, plain[top], fixed[top], floored)
        single_ids, single_scores = index.search(q, k)
        np.testing.assert_array_equal(single_ids, ids)
        np.testing.assert_array_equal(single_scores, scores)
