"""Exact top-k over a CSC impact matrix (BM25 postings): the C kernel and its numpy `_reference` twin.

Scores are float64 sums of precomputed impacts added in query order (duplicates count again), so they
equal a left-to-right `score += impact` bit for bit. Only docs holding at least one query term are hits;
ties break by (score desc, doc id asc). The C kernel visits only touched docs and keeps a k-heap.
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

__all__ = ["HAVE_EXTENSION", "topk", "topk_reference", "topk_batch", "topk_batch_reference", "pack_queries"]

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
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k of every query in one GIL-free C call -> (ids [Q, w] int64, scores [Q, w] float64, counts [Q] int64).

    w = min(k, n_docs); row q holds counts[q] hits, the rest is id -1 / score 0.
    """
    _check_k(k)
    if _ext is None:
        return topk_batch_reference(indptr, indices, impacts, n_docs, q_indptr, q_terms, k)
    n_q = len(q_indptr) - 1
    w = min(int(k), int(n_docs))
    ids = np.empty((n_q, w), dtype=np.int64)
    scores = np.empty((n_q, w), dtype=np.float64)
    counts = np.empty(n_q, dtype=np.int64)
    _ext.topk_batch(
        _c(indptr, np.int64), _c(indices, np.int32), _c(impacts, np.float64), int(n_docs),
        _c(q_indptr, np.int64), _c(q_terms, np.int64), int(k), int(n_threads), ids, scores, counts,
    )
    return ids, scores, counts


def topk(
    indptr: np.ndarray, indices: np.ndarray, impacts: np.ndarray, n_docs: int, q_terms: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of one query -> (ids [k'] int64, scores [k'] float64), k' = number of hits, at most k."""
    q_terms = _c(q_terms, np.int64)
    ids, scores, counts = topk_batch(
        indptr, indices, impacts, n_docs, np.array([0, len(q_terms)], dtype=np.int64), q_terms, k
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
    q_indptr: np.ndarray, q_terms: np.ndarray, k: int, n_threads: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain numpy twin of `topk_batch` (n_threads is ignored)."""
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
