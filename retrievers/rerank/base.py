"""What every reranker shares: the Reranker protocol, RerankerBase (rerank over score), the rerank contract
(`rerank_hits`: sorted, tail below, scores in [0, 1]), score interpolation and argument checks."""
from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from indexers.errors import ConfigError, missing, positive_int
from indexers.types import Hit, passage_text
from retrievers.fusion import score_fusion

__all__ = ["DEFAULT_DEPTH", "DEFAULT_RERANKER", "INTERPOLATION_FLOOR", "NoReranker", "Reranker", "RerankerBase",
           "check_depth", "check_texts", "hit_text", "interpolate_scores", "length_batches", "require_torch",
           "rerank_hits"]

DEFAULT_DEPTH = 20
"""Rerank the top 20: the LLM judge costs ~0.1-0.4 s per passage on a CPU, and recall@20 of fused is ~0.9 here."""

DEFAULT_RERANKER = "ltr"
"""What `ask`, the SDK and a bare `--rerank` use: the bundled feature reranker (retrievers.rerank.ltr), the only backend
measured to beat fused, and the cheapest (~7,000 passages/s, no model). Held out (results/reranker-ltr): HotpotQA
nDCG@10 0.836 -> 0.896 (150 queries), FanOutQA-leaf (never trained on) 0.815 -> 0.887; the passage selector's
supporting-paragraph recall at 300 / 600 tokens 0.667 / 0.833 -> 0.773 / 0.903. The cross-encoder adarag trains
on this CPU reaches 0.418 alone and adds nothing interpolated (results/reranker-train); qwen-0.5b as judge 0.577."""

def hit_text(hit: Hit) -> str:
    """The passage as a reranker reads it: as the prompt lists it (indexers.types.passage_text)."""
    return passage_text(hit.title, hit.text)


def rerank_hits(hits: Sequence[Hit], scores: Sequence[float], depth: int) -> list[Hit]:
    """Hits[:depth] re-scored with `scores` and sorted (ties keep retriever order), then the rest, scored below.

    The tail keeps its retriever order with scores strictly between 0 and the lowest reranked score (0 when
    that score is 0), so every score stays finite and >= 0 and the ranking stays sorted by score.
    """
    head = list(hits[:depth])
    if len(scores) != len(head):
        raise ValueError(f"{len(scores)} scores for {len(head)} hits")
    order = sorted(range(len(head)), key=lambda i: -scores[i])  # stable: ties keep retriever order
    out = [replace(head[i], score=float(scores[i])) for i in order]
    tail = list(hits[depth:])
    floor = min((float(s) for s in scores), default=1.0)
    n = len(tail)
    out += [replace(h, score=floor * (n - j) / (n + 1)) for j, h in enumerate(tail)]
    return out


INTERPOLATION_FLOOR = 0.01
"""Interpolated scores live in [0.01, 1]: a floor above 0 keeps the hits below the rerank depth (scored under
the lowest reranked one by `rerank_hits`) in their retriever order instead of all tied at 0."""


def interpolate_scores(first_stage: Sequence[float], ce: Sequence[float], weight: float) -> list[float]:
    """weight * minmax(ce) + (1 - weight) * minmax(first stage) per query (fusion.score_fusion), mapped into
    [INTERPOLATION_FLOOR, 1]: the standard reranker/first-stage interpolation."""
    if not (0.0 <= weight <= 1.0):
        raise ConfigError(f"interpolation weight must be in [0, 1], got {weight}")
    keys = list(range(len(ce)))
    fused = dict(score_fusion([(keys, list(ce)), (keys, list(first_stage))], [weight, 1.0 - weight], "minmax"))
    return [INTERPOLATION_FLOOR + (1.0 - INTERPOLATION_FLOOR) * fused[i] for i in keys]


def check_depth(depth: object) -> int:
    positive_int(depth, "rerank depth")
    return depth


def check_texts(query: object, texts: object) -> list[str]:
    if not isinstance(query, str) or not query.strip():
        raise ConfigError("the rerank query must be a non-blank str")
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError("texts must be a sequence of str, not one str: wrap it in a list")
    return [str(t) for t in texts]


@runtime_checkable
class Reranker(Protocol):
    """Re-scores (query, passage) pairs; `warm_up()` loads the model (idempotent), construction is cheap."""

    name: str

    def warm_up(self) -> None: ...

    def score(self, query: str, texts: Sequence[str]) -> list[float]: ...

    def rerank(self, query: str, hits: Sequence[Hit], depth: int = DEFAULT_DEPTH) -> list[Hit]: ...


class RerankerBase:
    """`rerank` over `score`: shared by every model backend."""

    name: str

    def warm_up(self) -> None:
        raise NotImplementedError

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        raise NotImplementedError

    def rerank(self, query: str, hits: Sequence[Hit], depth: int = DEFAULT_DEPTH) -> list[Hit]:
        """The top `depth` hits re-scored and sorted, the rest after them (see `rerank_hits`)."""
        depth = check_depth(depth)
        head = list(hits[:depth])
        return rerank_hits(hits, self.score(query, [hit_text(h) for h in head]) if head else [], depth)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class NoReranker(RerankerBase):
    """Keeps the retriever's ranking and scores: spec ``none``."""

    name = "none"

    def warm_up(self) -> None:
        return None

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """No model: every passage scores 0 (rerank() does not call this and keeps retriever scores)."""
        return [0.0] * len(check_texts(query, texts))

    def rerank(self, query: str, hits: Sequence[Hit], depth: int = DEFAULT_DEPTH) -> list[Hit]:
        check_depth(depth)
        return list(hits)


def require_torch() -> Any:
    """The torch module, or MissingDependencyError naming the `generate` extra (transformers too)."""
    for module in ("torch", "transformers"):
        if importlib.util.find_spec(module) is None:
            raise missing("generate", module)
    import torch

    return torch


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices in batches of similar length (longest first): less padding per batch."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
