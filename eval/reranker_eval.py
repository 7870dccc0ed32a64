"""Held-out table for a trained reranker, on the queries `adarag reranker train` held out (ids in its manifest):
a cross-encoder: fused vs fused + CE (pure and interpolated, several depths) vs fused + LLM judge; a feature
reranker (--kind ltr): fused vs fused + LTR, and a refit without each feature (the ablation).

    python -m eval.reranker_eval --data DATA --index INDEX --model CE_DIR --out results/reranker-train \
        [--depths 20,50] [--judge qwen-0.5b --judge-queries 10 --judge-depth 10] [--threads 1]

Each query's top max(depths) passages are scored by the cross-encoder once; every CE row reuses those scores.
Metrics are pytrec_eval's (eval.beir.evaluate_run) over documents (MaxP), top 100, as `adarag eval beir`.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.beir import METRICS, evaluate_run, load_beir
from indexers.index import open_index
from indexers.ingest import passages_to_documents
from indexers.types import Hit
from retrievers.rerank import (
    CrossEncoderReranker,
    LLMJudge,
    hit_text,
    interpolate_scores,
    rerank_hits,
)
from retrievers.rerank.train.trainer import verify_reranker_dir
from retrievers.search import Retriever
from eval.shared import portable_path

__all__ = ["evaluate_ltr", "evaluate_reranker"]

log = logging.getLogger(__name__)


def _docs(hits: Sequence[Hit], k: int = 100) -> dict[str, float]:
    return dict(passages_to_documents([(h.id, h.score) for h in hits])[:k])


def _row(name: str, qrels: dict, run: dict, per_s: float | None, n: int, note: str = "") -> dict[str, Any]:
    means, _ = evaluate_run({q: qrels[q] for q in run}, run)
    return {"config": name, "n_queries": n, **{m: round(v, 4) for m, v in means.items()},
            "passages_per_s": per_s, "note": note}


def evaluate_reranker(data: str | Path, index_dir: str | Path, model: str | Path, *, depths: Sequence[int] = (20, 50),
                      store: str = "fused", passage_depth: int = 200, judge: str | None = None,
                      judge_queries: int = 10, judge_depth: int = 10, threads: int | None = 1,
                      judge_only: bool = False, limit: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Rows of the held-out table (see module doc), plus the settings that made them."""
    from tqdm import tqdm

    manifest = verify_reranker_dir(model)
    beir = load_beir(data, "test")
    qids = [q for q in manifest["heldout_qids"] if q in beir.qrels][:limit]
    weight = (manifest.get("interpolation") or {}).get("weight")
    ce = CrossEncoderReranker(model, threads=threads, interpolate=1.0)
    top = max(depths)
    heads: dict[str, list[Hit]] = {}
    ce_scores: dict[str, list[float]] = {}
    with open_index(index_dir) as index:
        retriever = Retriever(index, threads=threads)
        t = time.perf_counter()
        ranked = retriever.search_batch([beir.queries[q] for q in qids], store, passage_depth)
        t_first = time.perf_counter() - t
        hits = dict(zip(qids, ranked))
        t_ce = 0.0
        for q in tqdm([] if judge_only else qids, desc="cross-encoder", disable=not progress):
            heads[q] = hits[q][:top]
            t = time.perf_counter()
            ce_scores[q] = ce.score(beir.queries[q], [hit_text(h) for h in heads[q]])
            t_ce += time.perf_counter() - t
        ce_per_s = round(sum(len(v) for v in ce_scores.values()) / t_ce, 1) if t_ce else None
        rows = [_row(store, beir.qrels, {q: _docs(hits[q]) for q in qids}, None, len(qids),
                     f"first stage, {len(qids) / t_first:.1f} q/s")]

        def ce_rows(queries: list[str], note: str = "") -> list[dict]:
            """The cross-encoder rows (alone and interpolated, at each depth) over `queries`."""
            out = []
            for d in [] if judge_only else depths:
                for w, label in ((1.0, "CE"), (weight, f"CE interpolated w={weight}")):
                    if w is None:
                        continue
                    run = {}
                    for q in queries:
                        s = ce_scores[q][:d]
                        if w < 1.0:
                            s = interpolate_scores([h.score for h in heads[q][:d]], s, w)
                        run[q] = _docs(rerank_hits(hits[q], s, d))
                    out.append(_row(f"{store} + {label} @{d}", beir.qrels, run, ce_per_s, len(queries), note))
            return out

        rows += ce_rows(qids)
        for d in depths:  # the floor a reranker must clear: the top d in random order, mean of 20 seeds
            vals = []
            for seed in range(20):
                rng = random.Random(seed)
                run = {q: _docs(rerank_hits(hits[q], [rng.random() for _ in hits[q][:d]], d)) for q in qids}
                vals.append(_row("", beir.qrels, run, None, len(qids)))
            rows.append({"config": f"{store}, top {d} shuffled (mean of 20 seeds)", "n_queries": len(qids),
                         **{m: round(sum(v[m] for v in vals) / len(vals), 4) for m in METRICS},
                         "passages_per_s": None, "note": "baseline"})
        sub = qids[:judge_queries]
        note = f"first {len(sub)} held-out queries (the judge's subset)"
        if sub:
            rows.append(_row(store, beir.qrels, {q: _docs(hits[q]) for q in sub}, None, len(sub), note))
            rows += ce_rows(sub, note)
        if judge and sub:
            llm = LLMJudge(judge, threads=threads)
            llm.warm_up()
            run, t_j, n_j = {}, 0.0, 0
            for q in tqdm(sub, desc=f"judge {judge}", disable=not progress):
                t = time.perf_counter()
                run[q] = _docs(llm.rerank(beir.queries[q], hits[q], judge_depth))
                t_j += time.perf_counter() - t
                n_j += min(judge_depth, len(hits[q]))
            rows.append(_row(f"{store} + LLM judge {judge} @{judge_depth}", beir.qrels, run,
                             round(n_j / t_j, 2), len(sub), note))
    return {"model": str(model), "data": portable_path(data), "index": portable_path(index_dir), "store": store,
            "passage_depth": passage_depth, "threads": threads, "heldout_queries": len(qids),
            "interpolation_weight": weight, "train": {k: manifest[k] for k in ("data", "metrics", "params")},
            "rows": rows}


def evaluate_ltr(data: str | Path, index_dir: str | Path, model: str | Path, *, all_queries: bool = False,
                 ablate: bool = True, threads: int | None = 1) -> dict[str, Any]:
    """Held-out table for a feature reranker (`adarag reranker train --kind ltr`): the first stage, + LTR, and
    (`ablate`) + LTR refit on the same train split without each feature in turn. `all_queries` scores every
    judged query instead of the held-out ones (a transfer test on data the model never saw; no ablation)."""
    from retrievers.rerank.ltr import FEATURES, LTRReranker, fit_weights, labelled_group, load_ltr, unit_scores

    saved = load_ltr(model)
    info, depth, store = saved["info"], saved["depth"], saved["info"]["first_stage"]
    beir = load_beir(data, "test")
    judged = [q for q in beir.queries if q in beir.qrels]
    heldout_ids = set(info["heldout_qids"])
    held = judged if all_queries else [q for q in info["heldout_qids"] if q in beir.qrels]
    train = [] if all_queries or not ablate else [q for q in judged if q not in heldout_ids]
    ltr = LTRReranker(model)
    with open_index(index_dir) as index:
        retriever = Retriever(index, threads=threads)
        t = time.perf_counter()
        ranked = dict(zip(held + train, retriever.search_batch([beir.queries[q] for q in held + train], store, 200)))
        t_first = time.perf_counter() - t
    note = "all judged queries" if all_queries else "held-out queries"
    rows = [_row(store, beir.qrels, {q: _docs(ranked[q]) for q in held}, None, len(held),
                 f"{note}; first stage {len(held + train) / t_first:.1f} q/s")]
    t = time.perf_counter()
    run = {q: _docs(ltr.rerank(beir.queries[q], ranked[q], depth)) for q in held}
    per_s = round(len(held) * depth / (time.perf_counter() - t), 1)
    rows.append(_row(f"{store} + LTR @{depth}", beir.qrels, run, per_s, len(held), note))
    if train:
        xy = {q: labelled_group(beir.queries[q], ranked[q][:depth], beir.qrels[q]) for q in held + train}
        for j, name in enumerate(FEATURES):
            keep = [i for i in range(len(FEATURES)) if i != j]
            w = fit_weights([(xy[q][0][:, keep], xy[q][1]) for q in train], info["l2"])
            run = {q: _docs(rerank_hits(ranked[q], unit_scores(xy[q][0][:, keep] @ w), depth)) for q in held}
            rows.append(_row(f"{store} + LTR without {name} (refit)", beir.qrels, run, None, len(held), note))
    return {"model": str(model), "data": portable_path(data), "index": portable_path(index_dir), "store": store, "depth": depth,
            "weights": dict(zip(FEATURES, saved["weights"])), "train_queries": info["train_queries"],
            "rows": rows}


def _markdown(res: dict[str, Any]) -> str:
    lines = ["| config | queries | nDCG@10 | Recall@100 | MRR@10 | passages/s | note |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['config']} | {r['n_queries']} | {r['ndcg@10']:.4f} | {r['recall@100']:.4f} | {r['mrr@10']:.4f} "
              f"| {r['passages_per_s'] or ''} | {r['note']} |" for r in res["rows"]]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--index", required=True, type=Path)
    p.add_argument("--model", required=True, type=Path, help="a dir made by `adarag reranker train [--kind ltr]`")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--depths", default="20,50")
    p.add_argument("--judge", default=None, help="also rank with this LLM judge (e.g. qwen-0.5b)")
    p.add_argument("--judge-queries", type=int, default=10)
    p.add_argument("--judge-depth", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--judge-only", action="store_true", help="skip the cross-encoder rows (run the judge alone)")
    p.add_argument("--limit", type=int, default=None, help="only the first N held-out queries (smoke runs)")
    p.add_argument("--name", default=None, help="output file stem (default: the model dir's name)")
    p.add_argument("--all-queries", action="store_true",
                   help="LTR models: score every judged query of --data (a transfer test), not the held-out ids")
    a = p.parse_args(argv)
    if (a.model / "adarag_ltr.json").exists():
        res = evaluate_ltr(a.data, a.index, a.model, all_queries=a.all_queries, threads=a.threads)
    else:
        res = evaluate_reranker(a.data, a.index, a.model, depths=[int(d) for d in a.depths.split(",")],
                                judge=a.judge, judge_queries=a.judge_queries, judge_depth=a.judge_depth,
                                threads=a.threads, judge_only=a.judge_only, limit=a.limit)
    a.out.mkdir(parents=True, exist_ok=True)
    name = a.name or a.model.name
    (a.out / f"{name}.json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    (a.out / f"{name}.md").write_text(_markdown(res), encoding="utf-8")
    print(_markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
