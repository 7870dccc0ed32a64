"""End-to-end retrieval speed per configuration: queries/s, p50/p95 latency, share of time per stage.

One query at a time (what `adarag search` / `ask` do), on an index built from the bundled data. Stages:
retrieve (each store's top-`depth` rows plus passage text from the SQL store), fuse (RRF), rerank, select
(passage selector, budget counted with qwen-0.5b's tokenizer). Baselines timed in the same run on the same
queries: rank-bm25 (BM25Okapi get_scores + argsort over the same analyzed tokens) for the bm25 row; for fused,
the sum of its single-store rows (fusion overhead = ratio).

    python bench/retrieval.py --index HOTPOT_INDEX [--queries 100] [--rerank llm --rerank-queries 5]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexers.index import open_index  # noqa: E402
from indexers.text import tokenize  # noqa: E402
from retrievers.fusion import reciprocal_rank_fusion  # noqa: E402
from retrievers.search import Retriever  # noqa: E402
from retrievers.selector import Candidate, passage_text, select_passages  # noqa: E402

HOTPOT = ROOT.parent / "shared" / "data" / "hotpotqa"


def _queries(path: Path, n: int) -> list[str]:
    qs = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return (qs * (n // len(qs) + 1))[:n]


def run_config(r: Retriever, name: str, queries: list[str], k: int, depth: int, count, reranker=None,
               budget: int = 600) -> dict:
    """Per-query wall time and per-stage seconds for one configuration."""
    stores = {"bm25": ["bm25"], "dense": ["dense"], "ngram": ["ngram"]}.get(name, ["bm25", "dense"])
    stage = {"retrieve": 0.0, "fuse": 0.0, "rerank": 0.0, "select": 0.0}
    lat = []
    for q in queries:
        t0 = time.perf_counter()
        lists = [r.rows_batch([q], s, depth if len(stores) > 1 else k)[0] for s in stores]
        t1 = time.perf_counter()
        if len(stores) > 1:
            fused = reciprocal_rank_fusion([rows.tolist() for rows, _ in lists], k=r.rrf_k)
            rows, scores = [x for x, _ in fused], [s for _, s in fused]
        else:
            rows, scores = lists[0]
        t2 = time.perf_counter()
        hits = r.index.hits(rows[:max(k, 20)], scores[:max(k, 20)])
        t3 = time.perf_counter()
        if reranker is not None:
            hits = reranker.rerank(q, hits, 20)
        t4 = time.perf_counter()
        if name.endswith("select") or reranker is not None:
            select_passages([Candidate(h.id, h.text, h.title, max(h.score, 0.0)) for h in hits], budget, count)
        t5 = time.perf_counter()
        stage["retrieve"] += (t1 - t0) + (t3 - t2)
        stage["fuse"] += t2 - t1
        stage["rerank"] += t4 - t3
        stage["select"] += t5 - t4
        lat.append(t5 - t0)
    lat_ms = 1e3 * np.array(lat)
    total = float(np.sum(lat))
    return {"config": name, "n": len(queries), "qps": len(queries) / total, "p50_ms": float(np.percentile(lat_ms, 50)),
            "p95_ms": float(np.percentile(lat_ms, 95)),
            "share": {s: v / total for s, v in stage.items()}, "rerank_s": stage["rerank"]}


def rank_bm25_baseline(r: Retriever, queries: list[str], k: int) -> float:
    """rank-bm25 q/s on the same analyzed tokens (title + text per passage, as the index)."""
    from rank_bm25 import BM25Okapi

    passages = list(r.index.store.iter_passages())
    bm = BM25Okapi([tokenize(f"{p.title} {p.text}") for p in passages])
    t = time.perf_counter()
    for q in queries:
        np.argsort(-bm.get_scores(tokenize(q)))[:k]
    return len(queries) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", required=True, type=Path, help="index over the bundled data (bm25,dense[,ngram])")
    ap.add_argument("--queries-file", type=Path, default=HOTPOT / "queries.jsonl")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--depth", type=int, default=100, help="per-store candidates fed into fusion")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rerank", default=None, help="reranker spec (retrievers.rerank.load_reranker), e.g. llm")
    ap.add_argument("--rerank-queries", type=int, default=5)
    a = ap.parse_args()
    from indexers.ngram import NgramParams, ngram_tokenizer

    tok = ngram_tokenizer(NgramParams())
    count = lambda s: len(tok(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    qs = _queries(a.queries_file, a.queries)
    rows = []
    with open_index(a.index) as ix:
        r = Retriever(ix, depth=a.depth, threads=a.threads)
        for s in ("bm25", "dense"):
            r.rows_batch(qs[:3], s, a.k)  # load the embedder, warm caches
        configs = [c for c in ("bm25", "dense", "ngram") if c in ix.stores] + ["fused", "fused+select"]
        for c in configs:
            rows.append(run_config(r, c, qs, a.k, a.depth, count))
        base_bm25 = rank_bm25_baseline(r, qs[:min(50, len(qs))], a.k)
        rr_passages_s = None
        if a.rerank:
            from retrievers.rerank import load_reranker

            rer = load_reranker(a.rerank, threads=a.threads)
            rer.warm_up()
            res = run_config(r, "fused+rerank", qs[:a.rerank_queries], a.k, a.depth, count, reranker=rer)
            rows.append(res)
            rr_passages_s = 20 * res["n"] / res["rerank_s"] if res["rerank_s"] > 0 else None
    by = {x["config"]: x for x in rows}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, threads={a.threads}, Python "
          f"{platform.python_version()}; index {a.index} ({', '.join(ix.stores)}), k={a.k}, depth={a.depth}")
    print(f"{'config':<14}{'q/s':>9}{'p50 ms':>9}{'p95 ms':>9}  share: retrieve / fuse / rerank / select")
    for x in rows:
        sh = x["share"]
        print(f"{x['config']:<14}{x['qps']:>9.2f}{x['p50_ms']:>9.2f}{x['p95_ms']:>9.2f}  "
              f"{sh['retrieve']:.0%} / {sh['fuse']:.0%} / {sh['rerank']:.0%} / {sh['select']:.0%}  (n={x['n']})")
    print(f"\n{'metric':<40}{'ours':>10}{'baseline':>10}{'ratio':>8}")
    print(f"{'bm25 q/s (vs rank-bm25, same tokens)':<40}{by['bm25']['qps']:>10.1f}{base_bm25:>10.1f}"
          f"{by['bm25']['qps'] / base_bm25:>7.1f}x")
    parts = 1 / by["bm25"]["qps"] + 1 / by["dense"]["qps"]
    print(f"{'fused ms/q (vs bm25 + dense ms/q)':<40}{1e3 / by['fused']['qps']:>10.2f}{1e3 * parts:>10.2f}"
          f"{(1 / by['fused']['qps']) / parts:>7.2f}x")
    if rr_passages_s:
        print(f"reranker {a.rerank}: {rr_passages_s:.1f} passages/s (depth 20, {a.rerank_queries} queries)")


if __name__ == "__main__":
    main()
