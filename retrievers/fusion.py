"""Rank fusion: the one implementation every caller (SDK, CLI, components) uses."""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

from indexers.errors import ConfigError

__all__ = ["RRF_K", "reciprocal_rank_fusion"]

K = TypeVar("K", bound=Hashable)

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
