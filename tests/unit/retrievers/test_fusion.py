from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexers.errors import ConfigError
from retrievers.fusion import reciprocal_rank_fusion, score_fusion


def test_known_values_and_order():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "c", "d"]], k=60)
    scores = dict(fused)
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["a"] == pytest.approx(1 / 61)
    assert [key for key, _ in fused] == ["b", "c", "a", "d"]


def test_weights_and_validation():
    fused = reciprocal_rank_fusion([["a"], ["b"]], k=0, weights=[1.0, 2.0])
    assert fused == [("b", 2.0), ("a", 1.0)]
    with pytest.raises(ConfigError):
        reciprocal_rank_fusion([["a"]], weights=[1.0, 2.0])
    with pytest.raises(ConfigError):
        reciprocal_rank_fusion([["a"]], k=-1)


@given(st.lists(st.lists(st.integers(0, 30), unique=True, max_size=20), min_size=1, max_size=4))
def test_fusion_is_a_ranking_of_the_union_with_reference_scores(rankings):
    fused = reciprocal_rank_fusion(rankings)
    assert {k for k, _ in fused} == {x for r in rankings for x in r}
    ref = {x: sum(1 / (60 + r.index(x) + 1) for r in rankings if x in r) for x, _ in fused}
    assert all(s == pytest.approx(ref[x]) for x, s in fused)
    assert all(a[1] >= b[1] for a, b in pairwise(fused))


# --- weighted score fusion -------------------------------------------------------------------------

def _ref_norm(scores, norm):
    """Plain reference normalisation, written independently of the implementation."""
    if not scores:
        return []
    if max(scores) == min(scores):
        return [1.0 if norm == "minmax" else 0.0] * len(scores)
    if norm == "minmax":
        return [(s - min(scores)) / (max(scores) - min(scores)) for s in scores]
    scale = max(abs(s) for s in scores)  # z-scores are scale-invariant; scaling avoids underflow of tiny spreads
    x = [s / scale for s in scores]
    mean = sum(x) / len(x)
    std = (sum((v - mean) ** 2 for v in x) / len(x)) ** 0.5
    return [(v - mean) / std for v in x] if std else [0.0] * len(x)


def _ref_score_fusion(results, weights, norm):
    weights = weights or [1.0] * len(results)
    keys = []
    for ks, _ in results:
        keys += [k for k in ks if k not in keys]
    total = dict.fromkeys(keys, 0.0)
    for w, (ks, ss) in zip(weights, results):
        normed = _ref_norm(list(ss), norm)
        floor = min([0.0] + normed)
        for k in keys:
            total[k] += w * (normed[list(ks).index(k)] if k in ks else floor)
    return total, keys


_score = st.floats(-1e6, 1e6, allow_nan=False)
_results = st.lists(
    st.lists(st.tuples(st.integers(0, 25), _score), unique_by=lambda t: t[0], max_size=12).map(
        lambda pairs: ([k for k, _ in pairs], sorted((s for _, s in pairs), reverse=True))
    ),
    min_size=1,
    max_size=4,
)


@given(_results, st.sampled_from(["minmax", "zscore"]), st.data())
def test_score_fusion_matches_reference(results, norm, data):
    weights = data.draw(st.none() | st.lists(st.floats(0, 5), min_size=len(results), max_size=len(results)))
    fused = score_fusion(results, weights=weights, norm=norm)
    ref, first_seen = _ref_score_fusion(results, weights, norm)
    assert sorted(k for k, _ in fused) == sorted(first_seen)  # each doc of the union exactly once
    assert all(s == pytest.approx(ref[k], rel=1e-9, abs=1e-9) for k, s in fused)
    assert all(a[1] >= b[1] for a, b in pairwise(fused))
    for a, b in pairwise(fused):  # exact ties keep first-seen order
        if a[1] == b[1]:
            assert first_seen.index(a[0]) < first_seen.index(b[0])
    assert score_fusion(results, weights=weights, norm=norm) == fused  # deterministic


@given(_results)
def test_minmax_scores_lie_in_weight_range_and_single_list_keeps_order(results):
    fused = score_fusion(results)
    assert all(-1e-12 <= s <= len(results) + 1e-9 for _, s in fused)
    keys, scores = results[0]
    alone = score_fusion([(keys, scores)])
    ranked = [k for k, _ in alone]
    # a single list keeps its own order (its scores are sorted descending; ties keep list order)
    assert ranked == list(keys)


def test_score_fusion_known_values():
    fused = score_fusion([(["a", "b", "c"], [3.0, 2.0, 1.0]), (["b", "d"], [10.0, 5.0])])
    assert fused == [("b", 1.5), ("a", 1.0), ("c", 0.0), ("d", 0.0)]
    weighted = score_fusion([(["a", "b", "c"], [3.0, 2.0, 1.0]), (["b", "d"], [10.0, 5.0])], weights=[1.0, 3.0])
    assert weighted[0] == ("b", 3.5)
    z = dict(score_fusion([(["a", "b", "c"], [3.0, 2.0, 1.0]), (["b", "d"], [10.0, 5.0])], norm="zscore"))
    assert z["b"] == pytest.approx(1.0)  # 0 (mean of list 1) + 1
    assert z["a"] == pytest.approx(1.5**0.5 - 1.0)
    assert z["d"] == pytest.approx(-(1.5**0.5) - 1.0)  # missing from list 1: that list's minimum z


def test_score_fusion_missing_docs_and_constant_lists():
    # a single hit (constant list) normalises to 1 under minmax and still beats docs it did not retrieve
    fused = score_fusion([(["x"], [7.0]), (["a", "b"], [2.0, 1.0])])
    assert fused == [("x", 1.0), ("a", 1.0), ("b", 0.0)]
    # under zscore a constant list is order-neutral
    assert [k for k, _ in score_fusion([(["x"], [7.0]), (["a", "b"], [2.0, 1.0])], norm="zscore")] == ["a", "x", "b"]
    # scale-free: BM25-sized and RRF-sized lists count equally
    fused = dict(score_fusion([(["a", "b"], [40.0, 20.0]), (["b", "a"], [1 / 61, 1 / 62])]))
    assert fused["a"] == pytest.approx(fused["b"])
    assert score_fusion([]) == []
    assert score_fusion([([], [])]) == []


def test_score_fusion_validation():
    with pytest.raises(ConfigError, match="unknown score normalisation"):
        score_fusion([(["a"], [1.0])], norm="softmax")
    with pytest.raises(ConfigError, match="weights"):
        score_fusion([(["a"], [1.0])], weights=[1.0, 2.0])
    with pytest.raises(ConfigError, match=">= 0"):
        score_fusion([(["a"], [1.0])], weights=[-1.0])
    with pytest.raises(ConfigError, match="scores"):
        score_fusion([(["a", "b"], [1.0])])
    with pytest.raises(ConfigError, match="repeats"):
        score_fusion([(["a", "a"], [1.0, 0.5])])
    with pytest.raises(ConfigError, match="non-finite"):
        score_fusion([(["a"], [float("nan")])])


def test_zscore_survives_a_spread_below_float_resolution_of_its_squares():
    """Found by hypothesis in CI: squared deviations of [5e-206, 0] underflow to 0 without scaling."""
    fused = dict(score_fusion([([0, 1], [5.328484754286107e-206, 0.0])], norm="zscore"))
    assert fused == {0: pytest.approx(1.0), 1: pytest.approx(-1.0)}
