"""Bench SegmentedBM25 (query-time rescoring over segments) vs the single-index C kernel, same run, same data.

A synthetic Zipf corpus is built straight as postings arrays (no tokens). Baseline: BM25Index.search (baked
impacts, C kernel) over all rows. Ours: SegmentedBM25 over 1 segment (checked bit-equal to the baseline) and over
S segments with some rows deleted. Queries: `--terms` terms drawn by Zipf weight from ranks >= 100 (the analyzer
drops stopwords). Prints p50/p90/p99 ms per query, ours/base ratio, machine and versions. Not a pytest file.
    python bench/bm25_segments.py [--rows 200000] [--terms 10] [--segments 4] [--deleted 0.05]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexers.bm25 import (  # noqa: E402
    BM25Index, BM25Params, floor_idf, length_norms, mean_idf, posting_impacts, raw_idf)
from indexers.bm25_segments import BM25Deleted, SegmentedBM25, global_stats  # noqa: E402
from kernels import bm25 as kb  # noqa: E402


def postings(n_docs: int, vocab: int, tokens_per_doc: int, rng: np.random.Generator):
    """(term [nnz], doc [nnz], tf [nnz]) sorted by (term, doc), and doc lengths [n_docs]."""
    p = 1.0 / np.arange(1, vocab + 1)
    p /= p.sum()
    lens = rng.poisson(tokens_per_doc, n_docs).astype(np.int64)
    toks = rng.choice(vocab, size=int(lens.sum()), p=p).astype(np.int64)
    keys, tf = np.unique(toks * n_docs + np.repeat(np.arange(n_docs, dtype=np.int64), lens), return_counts=True)
    term, doc = np.divmod(keys, n_docs)
    return term, doc, tf, lens


def index_of(term, doc, tf, lens, lo: int, hi: int, vocab: int, params: BM25Params) -> BM25Index:
    """The BM25Index of docs [lo, hi), its impacts computed as build_bm25 computes them."""
    sel = (doc >= lo) & (doc < hi)
    t, d, f, dl = term[sel], doc[sel] - lo, tf[sel], lens[lo:hi]
    df = np.bincount(t, minlength=vocab)
    used = np.flatnonzero(df)
    remap = np.full(vocab, -1, np.int64)
    remap[used] = np.arange(len(used))
    indptr = np.zeros(len(used) + 1, np.int64)
    np.cumsum(df[used], out=indptr[1:])
    n, avgdl = hi - lo, int(dl.sum()) / (hi - lo)
    idf = raw_idf(df[used], n, params)
    uniq, counts = np.unique(df[used], return_counts=True)
    floor_idf(idf, mean_idf(raw_idf(uniq, n, params), counts), params)
    impacts = posting_impacts(idf[remap[t]], f, length_norms(dl[d], avgdl, params), params) + 0.0
    vocab_map = {f"w{w}": i for i, w in enumerate(used.tolist())}
    return BM25Index(params, vocab_map, indptr, d.astype(np.int32), impacts, dl, avgdl, f.astype(np.int32))


def timed(fn, queries) -> np.ndarray:
    out = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        out.append(time.perf_counter() - t0)
    return np.array(out) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--vocab", type=int, default=500_000)
    ap.add_argument("--tokens-per-doc", type=int, default=130)
    ap.add_argument("--terms", type=int, default=10)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--segments", type=int, default=4)
    ap.add_argument("--deleted", type=float, default=0.05)
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    params = BM25Params()
    term, doc, tf, lens = postings(args.rows, args.vocab, args.tokens_per_doc, rng)
    whole = index_of(term, doc, tf, lens, 0, args.rows, args.vocab, params)
    p = 1.0 / np.arange(100, args.vocab + 1)
    p /= p.sum()
    queries = [[f"w{w}" for w in rng.choice(np.arange(99, args.vocab), args.terms, p=p)] for _ in range(args.queries)]
    bounds = np.linspace(0, args.rows, args.segments + 1).astype(int).tolist()
    segs = [index_of(term, doc, tf, lens, a, b, args.vocab, params) for a, b in zip(bounds, bounds[1:])]
    dead = rng.random(args.rows) < args.deleted
    tokens = {}  # a deleted row's tokens, rebuilt from the postings (only what BM25Deleted needs)
    for t, d, f in zip(term[dead[doc]].tolist(), doc[dead[doc]].tolist(), tf[dead[doc]].tolist()):
        tokens.setdefault(d, []).extend([f"w{t}"] * f)
    parts = []
    for ix, a, b in zip(segs, bounds, bounds[1:]):
        gone = BM25Deleted.from_tokens([tokens.get(r, []) for r in range(a, b) if dead[r]])
        parts.append((ix, gone, ~dead[a:b]))
    one = SegmentedBM25([(whole, None, None)], global_stats([(whole, None)]), params)
    many = SegmentedBM25(parts, global_stats([(ix, g) for ix, g, _ in parts]), params)
    for q in queries[:20]:  # one segment, no deletions: bit-equal to the baked-impact kernel
        (r0, s0), (r1, s1) = whole.search(q, args.k), one.search(q, args.k)
        assert r0.tolist() == r1.tolist() and s0.tolist() == s1.tolist()
    cost = np.array([sum(whole.indptr[whole.vocab[t] + 1] - whole.indptr[whole.vocab[t]] for t in q
                         if t in whole.vocab) for q in queries])
    base = timed(lambda q: whole.search(q, args.k), queries)
    print(f"# bench/bm25_segments.py  machine: {platform.machine()} {os.cpu_count()} cores, python "
          f"{platform.python_version()}, numpy {np.__version__}, C kernel {kb.HAVE_EXTENSION}")
    print(f"# {args.rows} rows, {len(term)} postings, {len(whole.vocab)} terms; {args.queries} queries of "
          f"{args.terms} terms, k={args.k}; postings per query p50 {int(np.median(cost))}, max {int(cost.max())}")
    print(f"{'search':<40} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'ratio p50':>10}")
    for name, ms in [("base: BM25Index C kernel, 1 index", base),
                     ("SegmentedBM25, 1 segment", timed(lambda q: one.search(q, args.k), queries)),
                     (f"SegmentedBM25, {args.segments} segments, {args.deleted:.0%} deleted",
                      timed(lambda q: many.search(q, args.k), queries))]:
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        print(f"{name:<40} {p50:8.2f} {p90:8.2f} {p99:8.2f} {p50 / np.median(base):10.1f}")


if __name__ == "__main__":
    main()
