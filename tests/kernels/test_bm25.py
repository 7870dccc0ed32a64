"""kernels.bm25: the C top-k kernel against its numpy `_reference` twin (ids equal, scores allclose 1e-12)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernels import bm25 as kb


@st.composite
def csc_and_queries(draw):
    n_docs = draw(st.integers(1, 40))
    n_terms = draw(st.integers(1, 12))
    indptr = [0]
    indices: list[int] = []
    impacts: list[float] = []
    # few distinct impact values so ties happen; some terms have no postings; some docs none (empty docs)
    values = draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.25, -0.25, 2.0, 1e-3]), min_size=1, max_size=4))
    for _ in range(n_terms):
        docs = draw(st.sets(st.integers(0, n_docs - 1), max_size=n_docs))
        for d in sorted(docs):
            indices.append(d)
            impacts.append(draw(st.sampled_from(values)))
        indptr.append(len(indices))
    queries = draw(st.lists(st.lists(st.integers(0, n_terms - 1), max_size=6), min_size=1, max_size=5))
    k = draw(st.integers(1, n_docs + 5))  # k > n_docs included
    return (np.array(indptr, np.int64), np.array(indices, np.int32), np.array(impacts, np.float64) + 0.0,
            n_docs, queries, k)


def _check_row(ids, scores, ref_ids, ref_scores):
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-12, atol=0)


@pytest.mark.parametrize("batch", [kb.topk_batch, kb.topk_batch_reference])
@settings(max_examples=150, deadline=None)
@given(data=csc_and_queries(), n_threads=st.sampled_from([1, 2]))
def test_batch_matches_reference(batch, data, n_threads):
    indptr, indices, impacts, n_docs, queries, k = data
    q_indptr, q_terms = kb.pack_queries(queries)
    ids, scores, counts = batch(indptr, indices, impacts, n_docs, q_indptr, q_terms, k, n_threads)
    assert ids.shape == scores.shape == (len(queries), min(k, n_docs))
    for q, terms in enumerate(queries):
        ref_ids, ref_scores = kb.topk_reference(indptr, indices, impacts, n_docs, np.array(terms, np.int64), k)
        assert counts[q] == len(ref_ids)
        _check_row(ids[q, : counts[q]], scores[q, : counts[q]], ref_ids, ref_scores)
        assert (ids[q, counts[q]:] == -1).all()


@settings(max_examples=100, deadline=None)
@given(data=csc_and_queries())
def test_single_matches_reference(data):
    indptr, indices, impacts, n_docs, queries, k = data
    for terms in queries:
        q = np.array(terms, np.int64)
        _check_row(*kb.topk(indptr, indices, impacts, n_docs, q, k),
                   *kb.topk_reference(indptr, indices, impacts, n_docs, q, k))


def test_sums_in_query_order_bitwise():
    # 0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1 in float64: the kernel must add in query order, duplicates again
    indptr = np.array([0, 1, 2, 3], np.int64)
    indices = np.zeros(3, np.int32)
    impacts = np.array([0.1, 0.2, 0.3])
    for q in ([0, 1, 2], [2, 1, 0], [0, 0, 1], [2, 2, 2, 0]):
        _, s = kb.topk(indptr, indices, impacts, 1, np.array(q, np.int64), 1)
        expect = 0.0
        for t in q:
            expect += impacts[t]
        assert s[0] == expect


def test_ties_break_by_id_and_unmatched_docs_excluded():
    # docs 0..5; term 0 in docs 5,3,1 with equal impact; doc 4 matched with a negative score
    indptr = np.array([0, 4], np.int64)
    indices = np.array([1, 3, 4, 5], np.int32)
    impacts = np.array([1.0, 1.0, -1.0, 1.0])
    ids, scores = kb.topk(indptr, indices, impacts, 6, np.array([0], np.int64), 10)
    assert ids.tolist() == [1, 3, 5, 4]
    assert scores.tolist() == [1.0, 1.0, 1.0, -1.0]


def test_empty_query_and_bad_args():
    indptr = np.array([0, 1], np.int64)
    indices = np.array([0], np.int32)
    impacts = np.array([1.0])
    ids, scores = kb.topk(indptr, indices, impacts, 1, np.array([], np.int64), 3)
    assert ids.shape == scores.shape == (0,)
    with pytest.raises(ValueError):
        kb.topk(indptr, indices, impacts, 1, np.array([0], np.int64), 0)
    if kb.HAVE_EXTENSION:
        with pytest.raises(ValueError, match="term id"):
            kb.topk(indptr, indices, impacts, 1, np.array([5], np.int64), 1)
        with pytest.raises(ValueError, match="indptr"):
            kb.topk(np.array([0, 2], np.int64), indices, impacts, 1, np.array([0], np.int64), 1)


def test_threads_share_nothing():
    rng = np.random.default_rng(0)
    n_docs, n_terms = 3000, 200
    indptr = [0]
    indices = []
    for _ in range(n_terms):
        docs = np.sort(rng.choice(n_docs, rng.integers(0, 800), replace=False))
        indices.extend(docs.tolist())
        indptr.append(len(indices))
    indptr, indices = np.array(indptr, np.int64), np.array(indices, np.int32)
    impacts = rng.random(len(indices)).round(2)  # rounding makes ties
    queries = [rng.integers(0, n_terms, rng.integers(0, 6)).tolist() for _ in range(300)]
    qi, qt = kb.pack_queries(queries)
    expect = kb.topk_batch_reference(indptr, indices, impacts, n_docs, qi, qt, 7)
    results = []

    def run():
        results.append(kb.topk_batch(indptr, indices, impacts, n_docs, qi, qt, 7, 2))

    ts = [threading.Thread(target=run) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for ids, scores, counts in results:
        np.testing.assert_array_equal(ids, expect[0])
        np.testing.assert_array_equal(counts, expect[2])
        np.testing.assert_allclose(scores, expect[1], rtol=1e-12, atol=0)
