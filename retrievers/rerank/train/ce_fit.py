"""Fitting adarag's cross-encoder: the bundled MiniLM encoder plus a fresh 1-logit head, trained pointwise (BCE on
labelled pairs, soft targets allowed) or listwise (softmax over a positive and its hard negatives, in stages such
as ICT then qrels). `retrievers.rerank.train.trainer` mines the data, tunes the interpolation weight and writes the dir.
"""
from __future__ import annotations

import importlib.util
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from indexers.errors import ConfigError, missing, positive_int
from indexers.models import get_spec, package_files, set_threads
from retrievers.rerank.train.ict import Group, listwise_loss

__all__ = ["BASE_MODEL", "LOSSES", "Pair", "TrainParams", "train_cross_encoder", "train_listwise"]

BASE_MODEL = "minilm"
LOSSES = ("bce", "listwise")


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
            positive_int(v, f"{name}")
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


def torch_transformers() -> tuple[Any, Any]:
    for module in ("torch", "transformers", "sentence_transformers"):
        if importlib.util.find_spec(module) is None:
            raise missing("dense", module)
    import torch
    import transformers

    return torch, transformers


def train_cross_encoder(pairs: Sequence[Pair], params: TrainParams, progress: bool = False) -> tuple[Any, Any, dict]:
    """(model, tokenizer, stats): MiniLM encoder + fresh head trained with BCE (soft targets allowed)."""
    torch, _ = torch_transformers()
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
            losses.append(_step(model, loss, opt, sched, bar))
    bar.close()
    model.eval()
    secs = time.perf_counter() - t0
    tail = losses[-max(1, steps_per_epoch):]
    stats = {"steps": total, "train_seconds": round(secs, 1), "pairs_per_s": round(len(pairs) * params.epochs / secs, 1),
             "first_loss": round(losses[0], 4), "last_epoch_loss": round(sum(tail) / len(tail), 4)}
    return model, tok, stats


def _base_model(params: TrainParams) -> tuple[Any, Any]:
    """(MiniLM + fresh 1-logit head in train mode, its tokenizer), seeded, on `params.threads` threads."""
    torch, transformers = torch_transformers()
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


def _step(model: Any, loss: Any, opt: Any, sched: Any, bar: Any) -> float:
    """One optimizer step on `loss` (gradients clipped to norm 1), the schedule advanced, the bar ticked; its value."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    opt.zero_grad()
    value = loss.item()
    bar.update(1)
    bar.set_postfix(loss=f"{value:.3f}")
    return value


def train_listwise(stages: Sequence[tuple[str, Sequence[Group], int]], params: TrainParams,
                   progress: bool = False) -> tuple[Any, Any, dict]:
    """(model, tokenizer, stats): MiniLM + fresh head trained on (name, groups, epochs) stages in order (e.g. ICT
    then qrels), each with its own warm-up/decay schedule, by `listwise_loss` over 1 positive + negatives."""
    torch_transformers()  # a missing dependency is reported before the groups are checked
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
                losses.append(_step(model, loss, opt, sched, bar))
        bar.close()
        tail = losses[-max(1, steps_per_epoch):]
        stats[name] = {"groups": len(groups), "group_size": size, "epochs": epochs, "steps": total,
                       "seconds": round(time.perf_counter() - t1, 1), "first_loss": round(losses[0], 4),
                       "last_epoch_loss": round(sum(tail) / len(tail), 4),
                       "uniform_loss": round(math.log(size), 4)}
    model.eval()
    stats["train_seconds"] = round(time.perf_counter() - t0, 1)
    return model, tok, stats
