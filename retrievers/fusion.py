"""Rank fusion: the one implementation every caller (SDK, CLI, components) uses."""
from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import Literal, TypeVar

from indexers.errors import ConfigError

__all__ = ["RRF_K", "Norm", "reciprocal_rank_fusion", "score_fusion"]

K = TypeVar("K", bound=Hashable)

Norm = Literal["minmax", "zscore"]

RRF_K = 60
"""Cormack et al. (2009): k = 60 damps the head of each list so no single retriever dominates."""


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[K]], k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[K, float]]:
    """Fuse ranked lists: score(d) = sum_i w_i / (k + rank_i(d)), ranks from 1; ties keep first-seen order."""
    if k < 0:
        raise ConfigError(f"RRF k must be >= 0, got {k}")
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings):
        raise ConfigError(f"{len(weights)} weights for {len(rankings)} rankings")
    scores: dict[K, float] = {}
    for w, ranking in zip(weights, rankings):
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + w / (k + rank)
    order = {key: i for i, key in enumerate(scores)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def _minmax(scores: Sequence[float]) -> list[float]:
    """Map to [0, 1]; a constant list (one hit, or all tied) maps to 1.0: each of its hits is the list's best."""
    lo, hi = min(scores), max(scores)
    if hi == lo:
        return [1.0] * len(scores)
    return [(s - lo) / (hi - lo) for s in scores]


def _zscore(scores: Sequence[float]) -> list[float]:
    """(s - mean) / population std; a constant list has no spread and maps to 0.0.

    Scores are first divided by max |s| (z-scores are invariant to positive scaling) so tiny spreads such as
    [5e-206, 0.0] do not underflow to a zero std.
    """
    lo, hi = min(scores), max(scores)
    if hi == lo:
        return [0.0] * len(scores)
    scale = max(abs(lo), abs(hi))
    x = [s / scale for s in scores]
    mean = math.fsum(x) / len(x)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in x) / len(x))
    if std == 0.0:  # distinct values whose spread is below float resolution even after scaling
        return [0.0] * len(scores)
    return [(v - mean) / std for v in x]


_NORMS: dict[str, Callable[[Sequence[float]], list[float]]] = {"minmax": _minmax, "zscore": _zscore}


def score_fusion(
    results: Sequence[tuple[Sequence[K], Sequence[float]]],
    weights: Sequence[float] | None = None,
    norm: Norm = "minmax",
) -> list[tuple[K, float]]:
    """Fuse scored lists: score(d) = sum_i w_i * norm_i(d) after normalising each list on its own scale.

    A doc missing from list i gets that list's floor, min(0, min norm_i): the worst retrieved doc's
    normalised score (a truncated list says an unretrieved doc scores no higher than its last hit);
    min-max floors at 0, so a constant list (e.g. a single hit, normalised to 1) still lifts its hits;
    a constant list under z-score is order-neutral. Ties keep first-seen order (list order, then rank).
    """
    if norm not in _NORMS:
        raise ConfigError(f"unknown score normalisation {norm!r}; choose one of {sorted(_NORMS)}")
    weights = [1.0] * len(results) if weights is None else [float(w) for w in weights]
    if len(weights) != len(results):
        raise ConfigError(f"{len(weights)} weights for {len(results)} result lists: pass one weight per list")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ConfigError(f"fusion weights must be finite and >= 0, got {weights}")
    normalise = _NORMS[norm]
    per_list: list[tuple[dict[K, float], float]] = []  # (doc -> normalised score, floor for missing docs)
    for i, item in enumerate(results):
        if len(item) != 2:
            raise ConfigError(f"result list {i} must be a (keys, scores) pair")
        keys, scores = item
        if len(keys) != len(scores):
            raise ConfigError(f"result list {i} has {len(keys)} keys but {len(scores)} scores: pass one score per key")
        if len(set(keys)) != len(keys):
            raise ConfigError(f"result list {i} repeats a key: deduplicate each list before fusing")
        values = [float(s) for s in scores]
        if any(not math.isfinite(s) for s in values):
            raise ConfigError(f"result list {i} has a non-finite score (nan/inf): fix the retriever's scores")
        normed = normalise(values) if values else []
        per_list.append((dict(zip(keys, normed)), min(0.0, min(normed, default=0.0))))
    order: dict[K, int] = {}
    for keys, _ in results:
        for key in keys:
            order.setdefault(key, len(order))
    fused = {key: math.fsum(w * table.get(key, floor) for w, (table, floor) in zip(weights, per_list)) for key in order}
    return sorted(fused.items(), key=lambda kv: (-kv[1], order[kv[0]]))
