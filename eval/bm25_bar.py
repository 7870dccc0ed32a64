"""The BM25 quality bar: adarag's BM25 nDCG@10 against rank-bm25 and bm25s, measured in one run on one dataset.

    python -m eval.bm25_bar --data ../shared/data/hotpotqa [--data /tmp/fqleaf]   (any BEIR folder)

Every system ranks whole documents of DATA/corpus.jsonl (title + text) for the judged queries, 100 deep, and
is scored by eval.beir.evaluate_run (pytrec_eval). adarag is measured as built by default (200-word passages,
50 overlap, documents ranked by their best passage: MaxP) and unsplit (one passage per document), so the
cost of passage splitting is visible apart from the scoring function, each with Okapi (rank-bm25's idf with its
epsilon floor, the default) and Lucene idf log(1 + (N - n + .5)/(n + .5)) (bm25s, Anserini).
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from eval.beir import evaluate_run, load_beir, load_corpus
from indexers.text import tokenize

__all__ = ["SYSTEMS", "bm25_bar"]

Run = dict[str, dict[str, float]]


def _top(scores: np.ndarray, ids: list[str], k: int) -> dict[str, float]:
    order = np.lexsort((np.arange(len(scores)), -scores))[:k]
    return {ids[i]: float(scores[i]) for i in order if scores[i] > 0}


def _adarag(passage_words: int, variant: str = "okapi") -> Callable:
    def run(docs, queries, k) -> Run:
        from indexers.bm25 import BM25Params
        from indexers.index import BuildParams, build_index, open_index
        from indexers.ingest import passages_to_documents
        from retrievers.search import Retriever

        with tempfile.TemporaryDirectory() as tmp:
            params = BuildParams(stores=("bm25",), passage_words=passage_words, bm25=BM25Params(variant=variant))
            build_index(docs, Path(tmp) / "ix", params, progress=False)
            with open_index(Path(tmp) / "ix") as ix:
                rows = Retriever(ix).rows_batch(list(queries.values()), "bm25", 2 * k)
                return {q: dict(passages_to_documents([(str(ix.ids[r]), float(s)) for r, s in zip(rr, ss)])[:k])
                        for q, (rr, ss) in zip(queries, rows)}
    return run


def _rank_bm25(analyze: Callable[[str], list[str]]) -> Callable:
    def run(docs, queries, k) -> Run:
        from rank_bm25 import BM25Okapi

        ids = [d.id for d in docs]
        bm = BM25Okapi([analyze(f"{d.title} {d.text}") for d in docs])
        return {q: _top(bm.get_scores(analyze(t)), ids, k) for q, t in queries.items()}
    return run


def _bm25s(docs, queries, k) -> Run:
    import bm25s
    import Stemmer

    stem = Stemmer.Stemmer("english")
    ids = [d.id for d in docs]
    sb = bm25s.BM25()  # its defaults: Lucene BM25, k1=1.5, b=0.75
    sb.index(bm25s.tokenize([f"{d.title} {d.text}" for d in docs], stopwords="en", stemmer=stem,
                            show_progress=False), show_progress=False)
    qids = list(queries)
    qtok = bm25s.tokenize([queries[q] for q in qids], stopwords="en", stemmer=stem, show_progress=False)
    res, sc = sb.retrieve(qtok, k=min(k, len(docs)), show_progress=False)
    return {q: {ids[int(i)]: float(s) for i, s in zip(res[j], sc[j]) if s > 0} for j, q in enumerate(qids)}


SYSTEMS: dict[str, Callable] = {
    "adarag (200-word passages, MaxP)": _adarag(200),
    "adarag (unsplit)": _adarag(10**6),
    "adarag Lucene idf (200-word passages, MaxP)": _adarag(200, "lucene"),
    "adarag Lucene idf (unsplit)": _adarag(10**6, "lucene"),
    "rank-bm25, adarag analyzer": _rank_bm25(tokenize),
    "rank-bm25, whitespace": _rank_bm25(lambda s: s.lower().split()),
    "bm25s (Lucene, stopwords, stemmed)": _bm25s,
}


def bm25_bar(data_dir: str | Path, k: int = 100) -> list[dict]:
    """One row per system: nDCG@10, Recall@10, Recall@100, MRR@10, seconds."""
    import pytrec_eval

    data = load_beir(data_dir)
    docs = load_corpus(data_dir)
    rows = []
    for name, fn in SYSTEMS.items():
        t = time.perf_counter()
        run = fn(docs, data.queries, k)
        secs = time.perf_counter() - t
        means, _ = evaluate_run(data.qrels, run)
        r10 = pytrec_eval.RelevanceEvaluator(data.qrels, {"recall.10"}).evaluate(run)
        means["recall@10"] = sum(v["recall_10"] for v in r10.values()) / len(data.qrels)
        rows.append({"system": name, **{m: round(v, 4) for m, v in means.items()}, "seconds": round(secs, 1)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", required=True, type=Path, help="BEIR folder (repeatable)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    a = ap.parse_args()
    print(f"rank-bm25 {md.version('rank-bm25')}, bm25s {md.version('bm25s')}; metrics: pytrec_eval")
    out = {}
    for d in a.data:
        rows = bm25_bar(d)
        out[str(d)] = rows
        print(f"\n{d} ({rows and len(load_beir(d).queries)} queries)")
        print(f"| system | nDCG@10 | R@10 | R@100 | MRR@10 | s |\n|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['system']} | {r['ndcg@10']:.4f} | {r['recall@10']:.4f} | {r['recall@100']:.4f} | "
                  f"{r['mrr@10']:.4f} | {r['seconds']} |")
    if a.json:
        a.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
