"""End-to-end indexing throughput (docs/s, MB/s) and peak memory per store.

Each configuration is built in a fresh subprocess so its peak RSS is its own. The baseline row is the SQL
store alone (ingest + passages + SQLite), the floor every other store is built on; rank-bm25's index build
is timed in the same run on the same tokens for the sparse store.

    python bench/index.py                      # bundled Wikipedia summaries (10,033 docs)
    python bench/index.py --corpus ../shared/data/hotpotqa/corpus.jsonl
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGS = {
    "sql only": dict(stores=("bm25",), only_sql=True),
    "bm25": dict(stores=("bm25",)),
    "dense minilm-int8": dict(stores=("dense",), embedder="minilm-int8"),
    "dense minilm fp32 (sentence-transformers)": dict(stores=("dense",), embedder="minilm"),
    "dense minilm-bf16": dict(stores=("dense",), embedder="minilm-bf16"),
    "bm25 + dense minilm-bf16 (the demo)": dict(stores=("bm25", "dense"), embedder="minilm-bf16"),
}


def _docs(corpus: str | None):
    from indexers.bundled import wiki_summaries
    from indexers.ingest import read_corpus

    return list(read_corpus([corpus]) if corpus else wiki_summaries())


def _one(name: str, corpus: str | None, threads: int | None, limit: int | None) -> dict:
    from indexers.dense import DenseParams
    from indexers.index import BuildParams, build_index
    from indexers.sql_store import SQLStore

    cfg = CONFIGS[name]
    docs = _docs(corpus)[:limit]
    mb = sum(len(d.text.encode()) + len(d.title.encode()) for d in docs) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        if cfg.get("only_sql"):
            from indexers.ingest import SplitConfig

            with SQLStore(f"sqlite:///{tmp}/docs.sqlite") as s:
                s.add_documents(docs, split=SplitConfig())
            secs = {"total": time.perf_counter() - t}
        else:
            params = BuildParams(stores=cfg["stores"], dense=DenseParams(embedder=cfg.get("embedder", "minilm")))
            secs = build_index(docs, Path(tmp) / "ix", params, threads=threads, progress=False).seconds
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"config": name, "docs": len(docs), "mb": mb, "seconds": secs, "peak_rss_mb": rss}


def _rank_bm25_build(corpus: str | None, limit: int | None) -> tuple[float, float]:
    """Seconds for rank-bm25 to index the same analyzed tokens, and for our build_bm25 on them."""
    from rank_bm25 import BM25Okapi

    from indexers.bm25 import BM25Params, build_bm25
    from indexers.text import tokenize

    toks = [tokenize(f"{d.title} {d.text}") for d in _docs(corpus)[:limit]]
    t = time.perf_counter()
    BM25Okapi(toks)
    base = time.perf_counter() - t
    t = time.perf_counter()
    build_bm25(toks, BM25Params())
    return time.perf_counter() - t, base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=None, help="JSONL/BEIR corpus (default: bundled Wikipedia summaries)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None, help="index only the first N documents")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of: " + ", ".join(CONFIGS))
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(_one(a.one, a.corpus, a.threads, a.limit)))
        return
    import numpy
    import torch

    print(f"# bench/index.py  machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}, "
          f"numpy {numpy.__version__}, torch {torch.__version__}, threads={a.threads or 'all'}")
    print(f"# corpus: {a.corpus or 'bundled Wikipedia summaries'}{f' (first {a.limit})' if a.limit else ''}\n")
    print(f"| {'configuration':44} | docs | MB | seconds | docs/s | MB/s | peak RSS MB | stage seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for name in [c.strip() for c in a.configs.split(",") if c.strip()]:
        cmd = [sys.executable, __file__, "--one", name] + (["--corpus", a.corpus] if a.corpus else [])
        cmd += (["--threads", str(a.threads)] if a.threads else []) + (["--limit", str(a.limit)] if a.limit else [])
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if out.returncode != 0:
            print(f"| {name:44} | failed: {out.stderr.strip().splitlines()[-1] if out.stderr else out.returncode} |")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        s = r["seconds"]["total"]
        stages = ", ".join(f"{k} {v:.1f}" for k, v in r["seconds"].items() if k != "total")
        print(f"| {name:44} | {r['docs']} | {r['mb']:.1f} | {s:.1f} | {r['docs'] / s:,.0f} | {r['mb'] / s:.2f} | "
              f"{r['peak_rss_mb']:.0f} | {stages} |", flush=True)
    ours, base = _rank_bm25_build(a.corpus, a.limit)
    print(f"\nBM25 index build on the same tokens: adarag {ours:.2f} s / rank-bm25 {base:.2f} s = "
          f"{base / ours:.1f}x faster")


if __name__ == "__main__":
    main()
