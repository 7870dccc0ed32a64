"""Train adarag's own cross-encoder: the bundled MiniLM encoder plus a fresh 1-logit head, BCE on (query, passage).

Pairs come from qrels (positives; the first stage's top non-relevant hits as hard negatives; a few random
negatives) or from an LLM teacher (it writes a question for a sampled passage, the index retrieves candidates and
the judge's P(yes) is the soft target: distillation). The output is a Hugging Face directory that
`load_reranker("cross-encoder:DIR")` loads, plus MANIFEST_FILE (format, base model, data summary, metrics,
held-out query ids, sha256 of every file), written to `<DIR>.incomplete` and swapped into place
(indexers.index_dir's staging, as for indexes).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from indexers.errors import ConfigError, ModelError, missing
from indexers.index import Index
from indexers.index_dir import commit_staging, sha256_file, staging_dir
from indexers.ingest import doc_id_of
from indexers.models import get_spec, package_files, set_threads
from indexers.types import Hit
from retrievers.rerank import (
    CrossEncoderReranker,
    LLMJudge,
    hit_text,
    interpolate_scores,
    load_reranker,
)
from retrievers.ict import Group, ict_groups, listwise_loss, qrels_groups
from retrievers.search import Retriever

__all__ = ["BASE_MODEL", "FORMAT", "FORMAT_VERSION", "MANIFEST_FILE", "Pair", "TrainParams", "qrels_pairs",
           "split_queries", "teacher_pairs", "train_cross_encoder", "train_listwise", "train_reranker", "train_summary",
           "verify_reranker_dir"]

log = logging.getLogger(__name__)

MANIFEST_FILE = "adarag_reranker.json"
FORMAT = "adarag-cross-encoder"
FORMAT_VERSION = 1
BASE_MODEL = "minilm"
LOSSES = ("bce", "listwise")
QUESTION_PROMPT = "Write one short question that the passage answers. Reply with the question only."


@dataclass(frozen=True)
class Pair:
    """One training example: label 1/0 from qrels, or the teacher's P(yes) in [0, 1]."""

    qid: str
    query: str
    text: str
    label: float
    kind: str  # positive | hard | random | teacher


@dataclass(frozen=True)
class TrainParams:
    """Every knob of one training run (saved in the manifest)."""

    epochs: int = 2
    batch_size: int = 16
    max_length: int = 256
    lr: float = 5e-5
    hard_negatives: int = 6
    random_negatives: int = 2
    first_stage: str = "fused"
    candidate_depth: int = 30
    max_pairs: int | None = None
    split_seed: int = 0
    train_fraction: float = 0.5
    tune_fraction: float = 0.2
    tune_depth: int = 20
    seed: int = 0
    threads: int | None = None
    teacher_candidates: int = 8
    loss: str = "bce"  # bce (pointwise) | listwise (softmax over 1 positive + hard_negatives)
    pseudo_queries: int = 0  # ICT groups from the corpus trained on first (listwise), before any qrels
    ict_epochs: int = 1
    ict_first_stage: str = "bm25"  # mines the ICT hard negatives

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "max_length", "candidate_depth", "tune_depth", "teacher_candidates"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be a positive int, got {v!r}")
        if self.max_length < 16:
            raise ConfigError(f"max_length must be >= 16 tokens, got {self.max_length}")
        if self.hard_negatives < 0 or self.random_negatives < 0:
            raise ConfigError("hard_negatives and random_negatives must be >= 0")
        if self.max_pairs is not None and self.max_pairs < 1:
            raise ConfigError(f"max_pairs must be >= 1 (or None for all), got {self.max_pairs}")
        if not (0.0 < self.train_fraction <= 1.0) or not (0.0 <= self.tune_fraction < 1.0):
            raise ConfigError("train_fraction must be in (0, 1] and tune_fraction in [0, 1)")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a positive number, got {self.lr!r}")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; choose one of {list(LOSSES)}")
        if not isinstance(self.pseudo_queries, int) or self.pseudo_queries < 0 or self.ict_epochs < 1:
            raise ConfigError("pseudo_queries must be an int >= 0 and ict_epochs >= 1")
        if self.pseudo_queries and self.loss != "listwise":
            raise ConfigError("ICT pseudo-queries train listwise: pass --loss listwise with --pseudo-queries")
        if self.loss == "listwise" and self.hard_negatives < 1:
            raise ConfigError("the listwise loss needs hard_negatives >= 1 per group")


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
    rows_of: dict[str, list[int]] = {}
    for row, pid in enumerate(index.ids.tolist()):
        rows_of.setdefault(doc_id_of(str(pid)), []).append(row)
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
            pool = [r for r in rng.sample(range(len(index.ids)), min(len(index.ids), 4 * params.random_negatives + 8))
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
    order = random.Random(params.seed).sample(range(len(index.ids)), len(index.ids))
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


def _torch_transformers() -> tuple[Any, Any]:
    for module in ("torch", "transformers", "sentence_transformers"):
        if importlib.util.find_spec(module) is None:
            raise missing("dense", module)
    import torch
    import transformers

    return torch, transformers


def train_cross_encoder(pairs: Sequence[Pair], params: TrainParams, progress: bool = False) -> tuple[Any, Any, dict]:
    """(model, tokenizer, stats): MiniLM encoder + fresh head trained with BCE (soft targets allowed)."""
    torch, _ = _torch_transformers()
    if not pairs:
        raise ConfigError("no training pairs: check that the qrels' relevant documents are in the index")
    from tqdm import tqdm

    model, tok = _base_model(params)
    steps_per_epoch = math.ceil(len(pairs) / params.batch_size)
    total = steps_per_epoch * params.epochs
    opt, sched = _optimizer(model, params.lr, total)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rng = random.Random(params.seed)
    order = list(range(len(pairs)))
    losses: list[float] = []
    t0 = time.perf_counter()
    bar = tqdm(total=total, desc="training", unit="step", disable=not progress)
    for _ in range(params.epochs):
        rng.shuffle(order)
        for start in range(0, len(order), params.batch_size):
            batch = [pairs[i] for i in order[start:start + params.batch_size]]
            enc = tok([p.query for p in batch], [p.text for p in batch], truncation="only_second",
                      max_length=params.max_length, padding=True, return_tensors="pt")
            logits = model(**enc).logits[:, 0]  # [b]
            loss = loss_fn(logits, torch.tensor([p.label for p in batch], dtype=torch.float32))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    model.eval()
    secs = time.perf_counter() - t0
    tail = losses[-max(1, steps_per_epoch):]
    stats = {"steps": total, "train_seconds": round(secs, 1), "pairs_per_s": round(len(pairs) * params.epochs / secs, 1),
             "first_loss": round(losses[0], 4), "last_epoch_loss": round(sum(tail) / len(tail), 4)}
    return model, tok, stats


def _base_model(params: TrainParams) -> tuple[Any, Any]:
    """(MiniLM + fresh 1-logit head in train mode, its tokenizer), seeded, on `params.threads` threads."""
    torch, transformers = _torch_transformers()
    set_threads(params.threads)
    (base_dir,) = package_files(get_spec(BASE_MODEL))
    torch.manual_seed(params.seed)
    tok = transformers.AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=1,
                                                                           local_files_only=True)
    return model.train(), tok


def _optimizer(model: Any, lr: float, total: int) -> tuple[Any, Any]:
    """AdamW (weight decay 0.01) with 10% linear warm-up then linear decay to 0 over `total` steps."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = max(1, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / (total - warm + 1))))
    return opt, sched


def train_listwise(stages: Sequence[tuple[str, Sequence[Group], int]], params: TrainParams,
                   progress: bool = False) -> tuple[Any, Any, dict]:
    """(model, tokenizer, stats): MiniLM + fresh head trained on (name, groups, epochs) stages in order (e.g. ICT
    then qrels), each with its own warm-up/decay schedule, by `listwise_loss` over 1 positive + negatives."""
    torch, _ = _torch_transformers()
    stages = [(name, list(groups), epochs) for name, groups, epochs in stages if groups]
    if not stages:
        raise ConfigError("no training groups: check the qrels' relevant documents are in the index, or pass "
                          "--pseudo-queries N")
    from tqdm import tqdm

    model, tok = _base_model(params)
    rng = random.Random(params.seed)
    stats: dict[str, Any] = {"loss": "listwise"}
    t0 = time.perf_counter()
    for name, groups, epochs in stages:
        size = 1 + min(len(g.negatives) for g in groups)
        per_step = max(1, params.batch_size // size)  # groups per optimizer step
        steps_per_epoch = math.ceil(len(groups) / per_step)
        total = steps_per_epoch * epochs
        opt, sched = _optimizer(model, params.lr, total)
        losses: list[float] = []
        order = list(range(len(groups)))
        bar = tqdm(total=total, desc=f"training ({name})", unit="step", disable=not progress)
        t1 = time.perf_counter()
        for _ in range(epochs):
            rng.shuffle(order)
            for start in range(0, len(order), per_step):
                batch = [groups[i] for i in order[start:start + per_step]]
                texts = [t for g in batch for t in (g.positive, *g.negatives[: size - 1])]
                enc = tok([g.query for g in batch for _ in range(size)], texts, truncation="only_second",
                          max_length=params.max_length, padding=True, return_tensors="pt")
                loss = listwise_loss(model(**enc).logits[:, 0].view(len(batch), size))  # [g, size]
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                opt.zero_grad()
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
        bar.close()
        tail = losses[-max(1, steps_per_epoch):]
        stats[name] = {"groups": len(groups), "group_size": size, "epochs": epochs, "steps": total,
                       "seconds": round(time.perf_counter() - t1, 1), "first_loss": round(losses[0], 4),
                       "last_epoch_loss": round(sum(tail) / len(tail), 4),
                       "uniform_loss": round(math.log(size), 4)}
    model.eval()
    stats["train_seconds"] = round(time.perf_counter() - t0, 1)
    return model, tok, stats


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


def _file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != MANIFEST_FILE}


def verify_reranker_dir(path: str | Path) -> dict[str, Any]:
    """The manifest of a trained reranker dir, after checking format and every file's sha256 (else ModelError)."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ModelError(f"{path / MANIFEST_FILE} is unreadable ({error}): retrain with `adarag reranker train "
                         f"... --out {path} --force`") from error
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise ModelError(f"{path} is {manifest.get('format')} v{manifest.get('version')}; this build reads "
                         f"{FORMAT} v{FORMAT_VERSION}: retrain with `adarag reranker train ... --force`")
    for rel, digest in manifest.get("sha256", {}).items():
        f = path / rel
        if not f.is_file() or sha256_file(f) != digest:
            raise ModelError(f"{f} is missing or corrupt (sha256 differs from {MANIFEST_FILE}): retrain with "
                             f"`adarag reranker train ... --out {path} --force`")
    return manifest


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
    _torch_transformers()
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
    tmp = staging_dir(out)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        interpolation = _tune_weight(tmp, candidates, queries or {}, qrels or {}, tune, params) if tune else None
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "base_model": BASE_MODEL,
                    "index": str(index.root), "index_fingerprint": index.manifest.corpus_fingerprint,
                    "params": asdict(params), "data": {**data.summary, "pairs": n_pairs},
                    "metrics": stats, "interpolation": interpolation, "heldout_qids": heldout,
                    "seconds": round(time.perf_counter() - t0, 1), "sha256": _file_hashes(tmp)}
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        commit_staging(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**manifest, "out": str(out)}


def train_summary(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The short form of a manifest the CLI prints: no per-file hashes, held-out ids counted not listed."""
    interp = manifest.get("interpolation") or {}
    return {"out": manifest.get("out"), "format": manifest["format"], "base_model": manifest["base_model"],
            "data": manifest["data"], "metrics": manifest["metrics"], "interpolation_weight": interp.get("weight"),
            "heldout_queries": len(manifest.get("heldout_qids", [])), "seconds": manifest["seconds"]}
