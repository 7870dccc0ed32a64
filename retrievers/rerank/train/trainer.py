"""Train adarag's own cross-encoder: mine the data, fit it (retrievers.rerank.train.ce_fit), tune the interpolation weight, write it.

Pairs come from qrels (positives; the first stage's top non-relevant hits as hard negatives; a few random
negatives), from an LLM teacher (it writes a question for a sampled passage, the index retrieves candidates and
the judge's P(yes) is the soft target: distillation), and/or from the corpus itself (ICT groups, retrievers.rerank.train.ict,
trained listwise before the qrels groups). The output is a Hugging Face directory that
`load_reranker("cross-encoder:DIR")` loads, plus MANIFEST_FILE (format, base model, data summary, metrics,
held-out query ids, sha256 of every file), written to `<DIR>.incomplete-<pid>-<hex>` and swapped into place
(indexers.artifact's publish, as for every artifact).
"""
from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexers.errors import ConfigError
from indexers.index import Index
from indexers.artifact import publish, read_artifact_manifest
from indexers.ingest import doc_id_of
from indexers.types import Hit
from retrievers.rerank import load_reranker
from retrievers.rerank.base import hit_text, interpolate_scores
from retrievers.rerank.cross_encoder import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_FILE,
    CrossEncoderReranker,
    verify_reranker_dir,
)
from retrievers.rerank.llm import LLMJudge
from retrievers.rerank.ltr import FEATURES, fit_weights, labelled_group, save_ltr
from retrievers.rerank.ltr import FORMAT as LTR_FORMAT
from retrievers.rerank.train.ce_fit import (
    BASE_MODEL,
    LOSSES,
    Pair,
    TrainParams,
    torch_transformers,
    train_cross_encoder,
    train_listwise,
)
from retrievers.rerank.train.ict import Group, ict_groups, qrels_groups
from retrievers.search import Retriever

__all__ = ["BASE_MODEL", "FORMAT", "FORMAT_VERSION", "LOSSES", "MANIFEST_FILE", "Pair", "TrainParams", "qrels_pairs",
           "split_queries", "teacher_pairs", "train_cross_encoder", "train_listwise", "train_ltr", "train_reranker",
           "train_summary", "verify_reranker_dir"]

log = logging.getLogger(__name__)

QUESTION_PROMPT = "Write one short question that the passage answers. Reply with the question only."


def split_queries(qids: Sequence[str], seed: int = 0, train_fraction: float = 0.5) -> tuple[list[str], list[str]]:
    """(train, held-out) ids: ranked by sha256(seed, id), so the split ignores input order; both sorted."""
    if not (0.0 < train_fraction <= 1.0):
        raise ConfigError(f"train_fraction must be in (0, 1], got {train_fraction}")
    unique = sorted(set(qids), key=lambda q: hashlib.sha256(f"{seed}\x00{q}".encode()).hexdigest())
    n_train = round(len(unique) * train_fraction)
    return sorted(unique[:n_train]), sorted(unique[n_train:])


def _first_stage(index: Index, first_stage: str, threads: int | None) -> tuple[Retriever, str]:
    if len(index.ids) == 0:
        raise ConfigError(f"index {index.root} is empty: add documents with `adarag index CORPUS --out {index.root}`")
    retriever = Retriever(index, threads=threads)
    retriever.stores_of(first_stage)  # a store the index lacks -> ConfigError naming the rebuild
    return retriever, first_stage


def qrels_pairs(index: Index, queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]],
                qids: Sequence[str], params: TrainParams, progress: bool = False
                ) -> tuple[list[Pair], dict[str, list[Hit]]]:
    """Pairs for `qids`: each relevant doc's best retrieved passage (else its first), the top non-relevant hits
    of the first stage, and random non-relevant passages. Also returns each query's first-stage hits."""
    from tqdm import tqdm

    retriever, store = _first_stage(index, params.first_stage, params.threads)
    live = index.live_rows().tolist()  # deleted rows (an index with deletes) are never sampled
    rows_of: dict[str, list[int]] = {}
    for row in live:
        rows_of.setdefault(doc_id_of(str(index.ids[row])), []).append(row)
    rng = random.Random(params.seed)
    pairs: list[Pair] = []
    candidates: dict[str, list[Hit]] = {}
    qids = [q for q in qids if q in queries and q in qrels]
    for start in tqdm(range(0, len(qids), 32), desc="mining pairs", unit="batch", disable=not progress):
        batch = qids[start:start + 32]
        ranked = retriever.rows_batch([queries[q] for q in batch], store, params.candidate_depth)
        for qid, (rows, scores) in zip(batch, ranked):
            hits = index.hits(rows.tolist(), scores.tolist())
            candidates[qid] = hits
            relevant = {d for d, g in qrels[qid].items() if g > 0}
            query = queries[qid]
            for doc in sorted(relevant):
                best = next((h for h in hits if h.doc_id == doc), None)
                if best is None and doc in rows_of:
                    best = index.hits(rows_of[doc][:1], [0.0])[0]
                if best is not None:
                    pairs.append(Pair(qid, query, hit_text(best), 1.0, "positive"))
            hard = [h for h in hits if h.doc_id not in relevant][: params.hard_negatives]
            pairs += [Pair(qid, query, hit_text(h), 0.0, "hard") for h in hard]
            seen = {h.doc_id for h in hits} | relevant
            pool = [r for r in rng.sample(live, min(len(live), 4 * params.random_negatives + 8))
                    if doc_id_of(str(index.ids[r])) not in seen][: params.random_negatives]
            pairs += [Pair(qid, query, hit_text(h), 0.0, "random") for h in index.hits(pool, [0.0] * len(pool))]
    return pairs, candidates


def _write_question(judge: LLMJudge, passage: str, max_new_tokens: int = 32) -> str:
    """The teacher LM's greedy question for a passage (first line, at most `max_new_tokens` tokens)."""
    import torch

    tok, model = judge.tokenizer, judge.model
    content = f"{QUESTION_PROMPT}\n\nPassage:\n{passage[:1500]}"
    if getattr(tok, "chat_template", None):
        text = tok.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                       add_generation_prompt=True)
    else:
        text = f"{content}\nQuestion:"
    ids = torch.tensor([tok.encode(text, add_special_tokens=False)], device=model.device)
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=tok.eos_token_id)
    answer = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
    return answer.splitlines()[0].strip() if answer else ""


def teacher_pairs(index: Index, teacher: str, params: TrainParams, max_pairs: int, progress: bool = False
                  ) -> tuple[list[Pair], dict[str, Any]]:
    """Distillation pairs: the teacher writes a question for a sampled passage (so the queries read like the
    users'), the first stage retrieves `teacher_candidates` passages for it (the source passage included), and
    the teacher's P(yes) labels each. Stops at `max_pairs`."""
    from tqdm import tqdm

    kind = teacher.partition(":")[0]
    if kind != "llm":
        raise ConfigError(f"unknown teacher {teacher!r}: use llm or llm:MODEL (e.g. llm:qwen-1.5b)")
    retriever, store = _first_stage(index, params.first_stage, params.threads)
    judge = load_reranker(teacher, threads=params.threads)
    if not isinstance(judge, LLMJudge):
        raise ConfigError(f"teacher {teacher!r} is not an LLM judge: use llm or llm:MODEL")
    judge.warm_up()
    live = index.live_rows().tolist()
    order = random.Random(params.seed).sample(live, len(live))
    pairs: list[Pair] = []
    n_queries, t0 = 0, time.perf_counter()
    bar = tqdm(total=max_pairs, desc="teacher pairs", unit="pair", disable=not progress)
    for row in order:
        if len(pairs) >= max_pairs:
            break
        source = index.hits([row], [0.0])[0]
        question = _write_question(judge, hit_text(source))
        if len(question.split()) < 3:
            continue
        hits = retriever.search(question, store, params.teacher_candidates)
        if source.id not in {h.id for h in hits}:
            hits = hits[: params.teacher_candidates - 1] + [source]
        hits = hits[: max_pairs - len(pairs)]
        labels = judge.score(question, [hit_text(h) for h in hits])
        qid = f"pseudo:{source.id}"
        pairs += [Pair(qid, question, hit_text(h), float(y), "teacher") for h, y in zip(hits, labels)]
        n_queries += 1
        bar.update(len(hits))
    bar.close()
    return pairs, {"teacher": judge.name, "pseudo_queries": n_queries,
                   "teacher_seconds": round(time.perf_counter() - t0, 1)}


def _ndcg10(ranked_docs: Sequence[str], relevant: set[str]) -> float:
    """Binary nDCG@10 over documents: the tuning objective only (reported metrics come from pytrec_eval)."""
    docs = list(dict.fromkeys(ranked_docs))[:10]
    dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(docs) if d in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(10, len(relevant))))
    return dcg / ideal if ideal else 0.0


def _tune_weight(path: Path, candidates: Mapping[str, list[Hit]], queries: Mapping[str, str],
                 qrels: Mapping[str, Mapping[str, int]], qids: Sequence[str], params: TrainParams
                 ) -> dict[str, Any]:
    """The interpolation weight in 0.0..1.0 (step 0.1) with the best mean nDCG@10 on the tuning queries
    (queries the cross-encoder never trained on: weights tuned on its own training queries would favour it)."""
    depth = params.tune_depth
    ce = CrossEncoderReranker(path, threads=params.threads, max_length=params.max_length, interpolate=1.0)
    scored = []
    for q in qids:
        head = candidates[q][:depth]
        scored.append((q, head, ce.score(queries[q], [hit_text(h) for h in head])))
    table = {}
    for w in [i / 10 for i in range(11)]:
        vals = []
        for q, head, s in scored:
            mixed = interpolate_scores([h.score for h in head], s, w)
            order = sorted(range(len(head)), key=lambda i: -mixed[i])
            vals.append(_ndcg10([head[i].doc_id for i in order], {d for d, g in qrels[q].items() if g > 0}))
        table[w] = sum(vals) / len(vals)
    best = max(table, key=lambda w: (table[w], -abs(w - 0.5)))
    return {"weight": best, "tune_queries": len(qids), "depth": depth,
            "tune_ndcg@10": {f"{w:.1f}": round(v, 4) for w, v in table.items()}}


@dataclass(frozen=True)
class _Data:
    pairs: list[Pair]
    summary: dict[str, Any] = field(default_factory=dict)


def train_reranker(index: Index, out: str | Path, *, queries: Mapping[str, str] | None = None,
                   qrels: Mapping[str, Mapping[str, int]] | None = None, teacher: str | None = None,
                   params: TrainParams = TrainParams(), force: bool = False, progress: bool = False) -> dict[str, Any]:
    """Mine pairs (qrels, teacher, and/or ICT pseudo-queries from the corpus), train, tune the first-stage
    interpolation weight (qrels only), and write `out` atomically. Returns the manifest (what `adarag reranker
    train --json` prints)."""
    out = Path(out)
    if qrels is not None and teacher is not None:
        raise ConfigError("give one source of labels: qrels (with queries) or a teacher (llm[:MODEL]), not both")
    if qrels is None and teacher is None and not params.pseudo_queries:
        raise ConfigError("no training data: give qrels (with queries), a teacher (llm[:MODEL]) or "
                          "pseudo_queries > 0 (--pseudo-queries N --loss listwise)")
    if teacher is not None and params.loss != "bce":
        raise ConfigError("teacher distillation trains pointwise on soft labels: use --loss bce with --teacher")
    if out.exists() and not force:
        raise ConfigError(f"{out} exists: pass --force (force=True) to replace it, or choose another --out")
    torch_transformers()
    t0 = time.perf_counter()
    heldout: list[str] = []
    tune: list[str] = []
    fit: list[str] = []
    candidates: dict[str, list[Hit]] = {}
    if qrels is not None:
        queries = dict(queries or {})
        judged = [q for q in qrels if q in queries]
        if not judged:
            raise ConfigError(f"none of the {len(qrels)} judged query ids is in the queries given "
                              f"({len(queries)} queries): pass the queries.jsonl that belongs to the qrels")
        train, heldout = split_queries(judged, params.split_seed, params.train_fraction)
        n_tune = round(len(train) * params.tune_fraction) if len(train) >= 5 else 0
        tune, fit = train[:n_tune], train[n_tune:]  # train is hash-ordered-then-sorted: a fixed slice
        pairs, candidates = qrels_pairs(index, queries, qrels, fit + tune, params, progress)
        fit_set = set(fit)
        pairs = [p for p in pairs if p.qid in fit_set]
        kinds = {k: sum(p.kind == k for p in pairs) for k in ("positive", "hard", "random")}
        data = _Data(pairs, {"source": "qrels", "queries": len(judged), "train_queries": len(fit),
                             "tune_queries": len(tune), "heldout_queries": len(heldout), **kinds})
    elif teacher is not None:
        max_pairs = params.max_pairs or 256
        pairs, info = teacher_pairs(index, teacher, params, max_pairs, progress)
        data = _Data(pairs, {"source": "teacher", **info, "mean_label": round(sum(p.label for p in pairs)
                                                                                / max(1, len(pairs)), 4)})
    else:
        data = _Data([], {"source": "ict"})
    if params.loss == "listwise":
        stages: list[tuple[str, Sequence[Group], int]] = []
        if params.pseudo_queries:
            ict = ict_groups(index, params.pseudo_queries, params.hard_negatives, first_stage=params.ict_first_stage,
                             seed=params.seed, threads=params.threads)
            stages.append(("ict", ict, params.ict_epochs))
        if qrels is not None:
            stages.append(("qrels", qrels_groups(candidates, queries or {}, qrels, fit, params.hard_negatives,
                                                 params.seed), params.epochs))
        model, tok, stats = train_listwise(stages, params, progress)
        data.summary.update({f"{name}_groups": len(groups) for name, groups, _ in stages})
        n_pairs = sum(1 + len(g.negatives) for _, groups, _ in stages for g in groups)
    else:
        pairs = data.pairs
        if params.max_pairs is not None and len(pairs) > params.max_pairs:
            pairs = random.Random(params.seed).sample(pairs, params.max_pairs)
        model, tok, stats = train_cross_encoder(pairs, params, progress)
        n_pairs = len(pairs)
    with publish(out, FORMAT, FORMAT_VERSION, manifest=MANIFEST_FILE) as (stage, body):
        model.save_pretrained(stage, safe_serialization=True)
        tok.save_pretrained(stage)
        interpolation = _tune_weight(stage, candidates, queries or {}, qrels or {}, tune, params) if tune else None
        body.update({"base_model": BASE_MODEL, "index": str(index.root),
                     "index_fingerprint": index.manifest.corpus_fingerprint, "params": asdict(params),
                     "data": {**data.summary, "pairs": n_pairs}, "metrics": stats, "interpolation": interpolation,
                     "heldout_qids": heldout, "seconds": round(time.perf_counter() - t0, 1)})
    manifest = read_artifact_manifest(out, FORMAT, (FORMAT_VERSION,), manifest=MANIFEST_FILE, fix="retrain it")
    return {**manifest, "out": str(out)}


def train_summary(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The short form of a manifest the CLI prints: no per-file hashes, held-out ids counted not listed."""
    interp = manifest.get("interpolation") or {}
    return {"out": manifest.get("out"), "format": manifest["format"], "base_model": manifest["base_model"],
            "data": manifest["data"], "metrics": manifest["metrics"], "interpolation_weight": interp.get("weight"),
            "heldout_queries": len(manifest.get("heldout_qids", [])), "seconds": manifest["seconds"]}


def train_ltr(index: Index, out: str | Path, *, queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]],
              first_stage: str = "fused", depth: int = 20, l2: float = 0.01, split_seed: int = 0,
              train_fraction: float = 0.5, threads: int | None = None, force: bool = False,
              progress: bool = False) -> dict[str, Any]:
    """Fit the feature reranker (retrievers.rerank.ltr) on the train split of the judged queries: each query's
    first-stage top `depth` hits, labelled by their document's relevance. Writes DIR/adarag_ltr.json; returns
    its payload plus the held-out ids and the train-split nDCG@10 before/after (what the CLI prints)."""
    from tqdm import tqdm


    if depth < 2:
        raise ConfigError(f"depth must be >= 2 (a ranking of one hit has nothing to learn), got {depth}")
    judged = [q for q in qrels if q in queries]
    if not judged:
        raise ConfigError(f"none of the {len(qrels)} judged query ids is in the queries given "
                          f"({len(queries)} queries): pass the queries.jsonl that belongs to the qrels")
    t0 = time.perf_counter()
    train, heldout = split_queries(judged, split_seed, train_fraction)
    retriever, store = _first_stage(index, first_stage, threads)
    groups, heads = [], []
    for start in tqdm(range(0, len(train), 32), desc="first stage", unit="batch", disable=not progress):
        batch = train[start:start + 32]
        for qid, hits in zip(batch, retriever.search_batch([queries[q] for q in batch], store, depth)):
            groups.append(labelled_group(queries[qid], hits, qrels[qid]))
            heads.append((qid, hits))
    w = fit_weights(groups, l2)
    before = after = 0.0
    for (q, hits), (x, _) in zip(heads, groups):
        relevant = {d for d, g in qrels[q].items() if g > 0}
        before += _ndcg10([h.doc_id for h in hits], relevant) / len(heads)
        after += _ndcg10([hits[i].doc_id for i in np.argsort(-(x @ w), kind="stable")], relevant) / len(heads)
    info = {"index": str(index.root), "index_fingerprint": index.manifest.corpus_fingerprint,
            "first_stage": first_stage, "l2": l2, "split_seed": split_seed, "train_fraction": train_fraction,
            "train_queries": len(train), "heldout_qids": heldout,
            "train_ndcg@10": {"first_stage": round(before, 4), "reranked": round(after, 4)}}
    save_ltr(out, w.tolist(), depth=depth, info=info, force=force)
    return {"out": str(out), "format": LTR_FORMAT, "weights": dict(zip(FEATURES, np.round(w, 4).tolist())),
            "depth": depth, "train_queries": len(train), "heldout_queries": len(heldout),
            "train_ndcg@10": info["train_ndcg@10"], "seconds": round(time.perf_counter() - t0, 1)}
