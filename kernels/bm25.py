"""Exact top-k over a CSC impact matrix (BM25 postings): the C kernel and its numpy `_reference` twin.

Scores are float64 sums of precomputed impacts added in query order (duplicates count again), so they
equal a left-to-right `score += impact` bit for bit. Only docs holding at least one query term are hits;
ties break by (score desc, doc id asc). The C kernel visits only touched docs and keeps a k-heap; for
queries with many postings it runs an exact MaxScore over per-term upper bounds (`term_upper_bounds`,
computed once per postings array and cached while the arrays live: do not mutate them in place).
"""
from __future__ import annotations

import logging
import weakref
from typing import Sequence

import numpy as np

__all__ = ["HAVE_EXTENSION", "topk", "topk_reference", "topk_batch", "topk_batch_reference", "pack_queries",
           "term_upper_bounds", "term_kth_impacts"]

_log = logging.getLogger(__name__)

try:
    from kernels import _bm25 as _ext

    HAVE_EXTENSION = True
except ImportError:  # not built: `pip install -e .` or `python setup.py build_ext --inplace`
    _ext = None
    HAVE_EXTENSION = False
    _log.warning("kernels._bm25 is not built; BM25 search falls back to the slow numpy reference. "
                 "Build it with `pip install -e .` or `python setup.py build_ext --inplace`.")


def _check_k(k: int) -> None:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")


_MODES = {"auto": 0, "exhaustive": 1, "maxscore": 2}
_KTH_MAX = 1024  # seed MaxScore's threshold from per-term k-th largest impacts up to this k
_CACHE: dict[tuple, tuple[weakref.ref, weakref.ref, object]] = {}


def term_upper_bounds(indptr: np.ndarray, impacts: np.ndarray) -> np.ndarray:
    """Per-term MaxScore bound [V] float64: max(0, largest impact of the term); 0 for a term with no postings."""
    indptr = np.asarray(indptr, dtype=np.int64)
    impacts = np.asarray(impacts, dtype=np.float64)
    ub = np.zeros(len(indptr) - 1, dtype=np.float64)
    nonempty = np.flatnonzero(indptr[1:] > indptr[:-1])
    if len(nonempty):  # segments between consecutive non-empty starts are exactly those terms' postings
        ub[nonempty] = np.maximum.reduceat(impacts, indptr[nonempty])
    np.maximum(ub, 0.0, out=ub)  # a doc lacking a term adds 0 for it, so a bound is never below 0
    return ub + 0.0


def term_kth_impacts(indptr: np.ndarray, impacts: np.ndarray, k: int) -> np.ndarray:
    """Per-term k-th largest impact [V] float64 (-inf where a term has fewer than k postings)."""
    _check_k(k)
    out = np.empty(len(indptr) - 1, dtype=np.float64)
    if _ext is not None:
        _ext.term_kth(_c(indptr, np.int64), _c(impacts, np.float64), int(k), out)
        return out
    for t in range(len(out)):
        seg = np.asarray(impacts[int(indptr[t]):int(indptr[t + 1])], dtype=np.float64)
        out[t] = -np.inf if len(seg) < k else np.partition(seg, len(seg) - k)[len(seg) - k]
    return out


def _cached(kind: tuple, indptr: np.ndarray, impacts: np.ndarray, make) -> object:
    """make(), memoised per (kind, indptr object, impacts object) while both arrays are alive."""
    key = (kind, id(indptr), id(impacts))
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is indptr and hit[1]() is impacts:
        return hit[2]
    value = make()
    try:
        drop = lambda _ref, key=key: _CACHE.pop(key, None)  # noqa: E731
        _CACHE[key] = (weakref.ref(indptr, drop), weakref.ref(impacts, drop), value)
    except TypeError:  # not weak-referenceable: just do not cache
        pass
    return value


def _pruning_arrays(indptr: np.ndarray, impacts: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(term_ub, term_kth or None) for MaxScore; kth seeding is only sound when no impact is negative."""
    ub = _cached(("ub",), indptr, impacts, lambda: term_upper_bounds(indptr, impacts))
    nonneg = _cached(("nonneg",), indptr, impacts, lambda: bool(len(impacts) == 0 or float(np.min(impacts)) >= 0.0))
    if not nonneg or k > _KTH_MAX:
        return ub, None
    return ub, _cached(("kth", int(k)), indptr, impacts, lambda: term_kth_impacts(indptr, impacts, k))


def pack_queries(queries: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Flatten term-id lists into (q_indptr int64 [Q+1], q_terms int64 [T])."""
    lens = np.fromiter((len(q) for q in queries), dtype=np.int64, count=len(queries))
    q_indptr = np.zeros(len(queries) + 1, dtype=np.int64)
    np.cumsum(lens, out=q_indptr[1:])
    q_terms = np.fromiter((t for q in queries for t in q), dtype=np.int64, count=int(q_indptr[-1]))
    return q_indptr, q_terms


def topk_batch(
    indptr: np.ndarray,  # [V+1] int64
    indices: np.ndarray,  # [nnz] int32, unique within a term, in [0, n_docs)
    impacts: np.ndarray,  # [nnz] float64
    n_docs: int,
    q_indptr: np.ndarray,  # [Q+1] int64
    q_terms: np.ndarray,  # [T] int64 term ids
    k: int,
    n_threads: int = 1,
    method: str = "auto",
    term_ub: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k of every query in one GIL-free C call -> (ids [Q, w] int64, scores [Q, w] float64, counts [Q] int64).

    w = min(k, n_docs); row q holds counts[q] hits, the rest is id -1 / score 0. method: "auto" (per query:
    touched-list scoring for short queries, exact MaxScore for long ones), "exhaustive" or "maxscore"; results
    are identical either way. term_ub: `term_upper_bounds(indptr, impacts)`, computed and cached when None.
    """
    _check_k(k)
    if method not in _MODES:
        raise ValueError(f"method must be one of {list(_MODES)}, got {method!r}")
    if _ext is None:
        return topk_batch_reference(indptr, indices, impacts, n_docs, q_indptr, q_terms, k)
    n_q = len(q_indptr) - 1
    w = min(int(k), int(n_docs))
    ids = np.empty((n_q, w), dtype=np.int64)
    scores = np.empty((n_q, w), dtype=np.float64)
    counts = np.empty(n_q, dtype=np.int64)
    mode = _MODES[method]
    term_kth = None
    if mode != 1:
        if term_ub is None:  # cached on the caller's objects: `_c` of a memmap is a fresh view every call
            term_ub, term_kth = _pruning_arrays(indptr, impacts, w)
        term_ub = _c(term_ub, np.float64)
    indptr, impacts = _c(indptr, np.int64), _c(impacts, np.float64)
    _ext.topk_batch(
        indptr, _c(indices, np.int32), impacts, int(n_docs),
        _c(q_indptr, np.int64), _c(q_terms, np.int64), int(k), int(n_threads), ids, scores, counts,
        None if mode == 1 else term_ub, mode, term_kth,
    )
    return ids, scores, counts


def topk(
    indptr: np.ndarray, indices: np.ndarray, impacts: np.ndarray, n_docs: int, q_terms: np.ndarray, k: int,
    method: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of one query -> (ids [k'] int64, scores [k'] float64), k' = number of hits, at most k."""
    q_terms = _c(q_terms, np.int64)
    ids, scores, counts = topk_batch(
        indptr, indices, impacts, n_docs, np.array([0, len(q_terms)], dtype=np.int64), q_terms, k, method=method
    )
    n = int(counts[0])
    return ids[0, :n], scores[0, :n]


def topk_reference(
    indptr: np.ndarray, indices: np.ndarray, impacts: np.ndarray, n_docs: int, q_terms: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Plain numpy twin of `topk`: dense accumulator, lexsort over the matched docs."""
    _check_k(k)
    acc = np.zeros(int(n_docs), dtype=np.float64)
    matched = np.zeros(int(n_docs), dtype=bool)
    for t in np.asarray(q_terms, dtype=np.int64):
        s, e = int(indptr[t]), int(indptr[t + 1])
        d = np.asarray(indices[s:e], dtype=np.int64)
        acc[d] += impacts[s:e]  # ids are unique within a term, so fancy += is a plain add
        matched[d] = True
    cand = np.flatnonzero(matched)
    order = np.lexsort((cand, -acc[cand]))[:k]
    return cand[order].astype(np.int64), acc[cand[order]]


def topk_batch_reference(
    indptr: np.ndarray, indices: np.ndarray, impacts: np.ndarray, n_docs: int,
    q_indptr: np.ndarray, q_terms: np.ndarray, k: int, n_threads: int = 1, method: str = "auto",
    term_ub: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain numpy twin of `topk_batch` (n_threads, method and term_ub are ignored)."""
    _check_k(k)
    n_q = len(q_indptr) - 1
    w = min(int(k), int(n_docs))
    ids = np.full((n_q, w), -1, dtype=np.int64)
    scores = np.zeros((n_q, w), dtype=np.float64)
    counts = np.zeros(n_q, dtype=np.int64)
    for q in range(n_q):
        i, s = topk_reference(indptr, indices, impacts, n_docs, q_terms[q_indptr[q]:q_indptr[q + 1]], k)
        ids[q, : len(i)], scores[q, : len(i)], counts[q] = i, s, len(i)
    return ids, scores, counts


def _c(a: np.ndarray, dtype: type) -> np.ndarray:
    """View `a` as a C-contiguous array of `dtype`, copying only when it is not one already."""
    return np.ascontiguousarray(a, dtype=dtype)
