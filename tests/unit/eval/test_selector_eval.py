"""eval/selector_eval.py: fixed top-k at a budget, and the selector-vs-top-k table on a small HotpotQA index."""
from __future__ import annotations


from eval.selector_eval import prefix_top_k
from retrievers.selector import Candidate


def test_prefix_top_k_stops_at_the_first_overflow_and_at_k():
    cands = [Candidate(f"d{i}", "w " * n, "", 10.0 - i) for i, n in enumerate([3, 3, 10, 1])]
    words = lambda s: len(s.split())  # noqa: E731
    assert [c.id for c in prefix_top_k(cands, 8, words)] == ["d0", "d1"]  # d3 would fit, a prefix stops at d2
    assert [c.id for c in prefix_top_k(cands, 100, words, k=3)] == ["d0", "d1", "d2"]
    assert prefix_top_k(cands, 2, words) == []


