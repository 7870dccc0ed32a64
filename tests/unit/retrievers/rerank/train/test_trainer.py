"""retrievers.rerank.train.trainer: the query split, pair mining, a tiny real training run (the trained head ranks its
training positives above their negatives better than the untrained head), manifest checksums on load, errors,
and the `adarag reranker train --json` contract."""
from __future__ import annotations


import numpy as np
import pytest

from indexers.errors import ConfigError
from retrievers.rerank import interpolate_scores
from retrievers.rerank.train.trainer import (
    split_queries,
)


# --------------------------------------------------------------------------- split and pairs


def test_split_is_deterministic_disjoint_and_order_free():
    ids = [f"q{i}" for i in range(101)]
    train, held = split_queries(ids, seed=3, train_fraction=0.6)
    assert (train, held) == split_queries(list(reversed(ids)), seed=3, train_fraction=0.6)
    assert not set(train) & set(held) and set(train) | set(held) == set(ids)
    assert len(train) == 61 and train == sorted(train)
    assert split_queries(ids, seed=4, train_fraction=0.6)[0] != train  # the seed matters
    with pytest.raises(ConfigError, match="train_fraction"):
        split_queries(ids, train_fraction=0.0)


def test_interpolation_weight_ends():
    first, ce = [3.0, 2.0, 1.0], [0.1, 0.9, 0.5]
    assert np.argsort(interpolate_scores(first, ce, 1.0))[::-1].tolist() == [1, 2, 0]
    assert np.argsort(interpolate_scores(first, ce, 0.0))[::-1].tolist() == [0, 1, 2]
    assert all(0.01 <= s <= 1.0 for s in interpolate_scores(first, ce, 0.4))  # > 0: the tail keeps its order
    with pytest.raises(ConfigError):
        interpolate_scores(first, ce, 1.5)


# --------------------------------------------------------------------------- training


# --------------------------------------------------------------------------- errors


# --------------------------------------------------------------------------- CLI
