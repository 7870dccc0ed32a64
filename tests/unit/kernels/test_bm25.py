"""kernels.bm25: the C top-k kernel against its numpy `_reference` twin (ids equal, scores allclose 1e-12)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernels import bm25 as kb
from tests.prereq import needs

NATIVE = "kernels._bm25 is not built: `pip install -e .` builds it"
needs_native = needs(kb.HAVE_EXTENSION, NATIVE)


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


# without the extension topk_batch is the reference itself: that case would compare it with itself
@pytest.mark.parametrize("batch", [pytest.param(kb.topk_batch, marks=needs_native), kb.topk_batch_reference])
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


@needs_native
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


@needs_native
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


# ---- MaxScore path: must equal the exhaustive path bit for bit (ids, float64 scores, tie-break, counts) ----

def _assert_bitwise(got, expect):
    (gi, gs, gc), (ei, es, ec) = got, expect
    np.testing.assert_array_equal(gc, ec)
    np.testing.assert_array_equal(gi, ei)
    assert gs.tobytes() == es.tobytes()  # bitwise, -0.0 vs 0.0 included


@st.composite
def dense_csc_and_queries(draw):
    """Postings where some terms hold most docs (common terms), few distinct impacts (ties at the k-th
    score), zero impacts, optionally negative ones; queries repeat terms."""
    n_docs = draw(st.integers(1, 120))
    n_terms = draw(st.integers(1, 8))
    neg = draw(st.booleans())
    pool = [0.0, 1e-3, 0.5, 1.0, 1.25, 2.0, 3.5] + ([-0.25, -1.0] if neg else [])
    values = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    indptr, indices, impacts = [0], [], []
    for _ in range(n_terms):
        density = draw(st.sampled_from([0.0, 0.02, 0.2, 0.6, 0.95, 1.0]))
        docs = np.flatnonzero(rng.random(n_docs) < density)
        indices.extend(docs.tolist())
        impacts.extend(rng.choice(values, len(docs)).tolist())
        indptr.append(len(indices))
    queries = draw(st.lists(st.lists(st.integers(0, n_terms - 1), max_size=7), min_size=1, max_size=6))
    k = draw(st.sampled_from([1, 2, 3, 5, 10, 50, 200]))
    return (np.array(indptr, np.int64), np.array(indices, np.int32), np.array(impacts, np.float64) + 0.0,
            n_docs, queries, k)


@needs_native
@settings(max_examples=300, deadline=None)
@given(data=st.one_of(csc_and_queries(), dense_csc_and_queries()), n_threads=st.sampled_from([1, 2]))
def test_maxscore_bitwise_equals_exhaustive_and_reference(data, n_threads):
    indptr, indices, impacts, n_docs, queries, k = data
    qi, qt = kb.pack_queries(queries)
    ex = kb.topk_batch(indptr, indices, impacts, n_docs, qi, qt, k, n_threads, method="exhaustive")
    for method in ("maxscore", "auto"):
        _assert_bitwise(kb.topk_batch(indptr, indices, impacts, n_docs, qi, qt, k, n_threads, method=method), ex)
    ref = kb.topk_batch_reference(indptr, indices, impacts, n_docs, qi, qt, k)
    _assert_bitwise(ex, ref)  # the numpy twin adds in query order too: bitwise equal, not just close


@needs_native
def test_maxscore_ties_at_kth_score_break_by_id():
    # every doc scores exactly 2.0 through different terms; the k lowest ids must win, whatever the list order
    n_docs = 50
    a = np.arange(0, n_docs, 2)  # term 0: even docs, impact 2.0
    b = np.arange(1, n_docs, 2)  # term 1: odd docs, impact 1.0 (added twice by the query)
    c = np.arange(n_docs)        # term 2: all docs, impact 0.0
    indptr = np.array([0, len(a), len(a) + len(b), len(a) + len(b) + n_docs], np.int64)
    indices = np.concatenate([a, b, c]).astype(np.int32)
    impacts = np.concatenate([np.full(len(a), 2.0), np.full(len(b), 1.0), np.zeros(n_docs)])
    for q in ([0, 1, 1, 2], [2, 1, 0, 1], [1, 2, 1, 0]):
        for k in (1, 3, 7, 49, 50, 60):
            ids, scores = kb.topk(indptr, indices, impacts, n_docs, np.array(q, np.int64), k, method="maxscore")
            assert ids.tolist() == list(range(min(k, n_docs)))
            assert (scores == 2.0).all()


def _zipf_index(n_docs, vocab, epsilon, seed):
    from indexers.bm25 import BM25Params, build_bm25

    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocab + 1)
    p /= p.sum()
    docs = [[f"w{t}" for t in rng.choice(vocab, size=int(n), p=p)] for n in rng.poisson(12, n_docs)]
    idx = build_bm25(docs, BM25Params(epsilon=epsilon))
    queries = [[idx.vocab[f"w{t}"] for t in rng.choice(vocab, size=int(m), p=p) if f"w{t}" in idx.vocab]
               for m in rng.integers(1, 8, 150)]
    queries += [[0], [0, 0], [0, 1, 2, 3], [3, 0, 0, 1]]  # the most common terms, duplicates
    return idx, queries


@needs_native
@pytest.mark.parametrize("epsilon", [0.25, 0.0, -0.5])  # floored idf > 0, idf == 0, idf < 0 (negative impacts)
@pytest.mark.parametrize("k", [1, 2, 10, 100, 5000])
def test_maxscore_on_okapi_zipf_index(epsilon, k):
    idx, queries = _zipf_index(2000, 400, epsilon, seed=int(k))
    qi, qt = kb.pack_queries(queries)
    args = (idx.indptr, idx.indices, idx.impacts, idx.n_docs, qi, qt, k)
    ex = kb.topk_batch(*args, method="exhaustive")
    _assert_bitwise(kb.topk_batch(*args, method="maxscore"), ex)
    _assert_bitwise(kb.topk_batch(*args, method="auto", n_threads=2), ex)
    if epsilon < 0:
        assert (idx.impacts < 0).any()
    for q in range(0, len(queries), 17):  # the numpy twin, bitwise, on a sample
        ids, scores = kb.topk_reference(idx.indptr, idx.indices, idx.impacts, idx.n_docs, np.array(queries[q]), k)
        n = ex[2][q]
        np.testing.assert_array_equal(ex[0][q, :n], ids)
        assert ex[1][q, :n].tobytes() == scores.tobytes()


def test_term_bounds_helpers():
    indptr = np.array([0, 3, 3, 5, 6], np.int64)  # term 1 has no postings
    impacts = np.array([0.5, 2.0, 1.0, -1.0, -2.0, 3.0])
    np.testing.assert_array_equal(kb.term_upper_bounds(indptr, impacts), [2.0, 0.0, 0.0, 3.0])
    np.testing.assert_array_equal(kb.term_kth_impacts(indptr, impacts, 1), [2.0, -np.inf, -1.0, 3.0])
    np.testing.assert_array_equal(kb.term_kth_impacts(indptr, impacts, 2), [1.0, -np.inf, -2.0, -np.inf])
    np.testing.assert_array_equal(kb.term_kth_impacts(indptr, impacts, 3), [0.5, -np.inf, -np.inf, -np.inf])
    with pytest.raises(ValueError):
        kb.topk_batch(indptr, np.zeros(6, np.int32), impacts, 1, np.array([0, 1], np.int64),
                      np.array([0], np.int64), 1, method="wand")


@needs_native
def test_pruning_bounds_are_cached_for_memmapped_postings(tmp_path):
    # load_bm25 memory-maps its arrays; their contiguous views are new objects on every call, so the cache
    # must key on the caller's arrays, or every search would redo an O(nnz) pass
    idx, queries = _zipf_index(500, 100, 0.25, seed=3)
    for name in ("indptr", "impacts"):
        np.save(tmp_path / f"{name}.npy", getattr(idx, name))
    indptr = np.load(tmp_path / "indptr.npy", mmap_mode="r")
    impacts = np.load(tmp_path / "impacts.npy", mmap_mode="r")
    q = np.array(queries[0] + [0], np.int64)
    got = kb.topk(indptr, idx.indices, impacts, idx.n_docs, q, 5, method="maxscore")
    keys = [key for key in kb._CACHE if key[1:] == (id(indptr), id(impacts))]
    assert {key[0] for key in keys} == {("ub",), ("nonneg",), ("kth", 5)}
    first = kb._pruning_arrays(indptr, impacts, 5)
    assert all(a is b for a, b in zip(first, kb._pruning_arrays(indptr, impacts, 5)))
    ref = kb.topk_reference(idx.indptr, idx.indices, idx.impacts, idx.n_docs, q, 5)
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[1].tobytes() == ref[1].tobytes()
    del indptr, impacts, first
    import gc

    gc.collect()
    assert not any(key[1:] == (k[1], k[2]) for key in kb._CACHE for k in keys)  # entries die with the arrays
