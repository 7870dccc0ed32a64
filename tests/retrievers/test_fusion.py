import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexers.errors import ConfigError
from retrievers.fusion import reciprocal_rank_fusion


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
    assert all(a[1] >= b[1] for a, b in zip(fused, fused[1:]))
