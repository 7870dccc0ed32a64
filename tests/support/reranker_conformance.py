"""RerankerConformance: what every Reranker (retrievers.rerank.base) must do. A backend's tests subclass it and
provide a `reranker` fixture; `scores_in_unit` is False for one that keeps first-stage scores (none)."""
from __future__ import annotations

import pytest

from indexers.errors import ConfigError
from indexers.types import Hit
from retrievers.rerank import Reranker

QUERY = "When was the Eiffel Tower completed?"
PASSAGES = ["The Eiffel Tower in Paris was completed in 1889 for the World's Fair.",
            "Bread is made from flour, water and yeast.", "Towers of Paris: a list of tall structures.",
            "The Eiffel Tower was built by Gustave Eiffel's company."]


def hits() -> list[Hit]:
    return [Hit(id=f"p{i}", score=float(10 - i), doc_id=f"d{i}", title="Eiffel Tower" if i % 2 == 0 else "",
                text=t) for i, t in enumerate(PASSAGES)] + [Hit(id="tail", score=1.0, text="not reranked")]


class RerankerConformance:
    scores_in_unit = True

    def test_is_a_reranker(self, reranker) -> None:
        assert isinstance(reranker, Reranker) and isinstance(reranker.name, str) and reranker.name

    def test_scores_one_probability_per_passage(self, reranker) -> None:
        s = reranker.score(QUERY, PASSAGES)
        assert len(s) == len(PASSAGES) and all(isinstance(x, float) and 0.0 <= x <= 1.0 for x in s)
        assert reranker.score(QUERY, []) == []

    def test_rerank_keeps_every_hit_sorts_the_head_and_leaves_the_tail(self, reranker) -> None:
        given = hits()
        out = reranker.rerank(QUERY, given, depth=4)
        assert sorted(h.id for h in out) == sorted(h.id for h in given)
        head = out[:4]
        assert all(a.score >= b.score for a, b in zip(head, head[1:]))
        assert out[4].id == "tail" and out[4].score <= head[-1].score
        if self.scores_in_unit:
            assert all(0.0 <= h.score <= 1.0 for h in out)
        assert {h.id: h.text for h in out} == {h.id: h.text for h in given}  # texts travel with their ids

    def test_bad_arguments_are_clear_errors(self, reranker) -> None:
        with pytest.raises(ConfigError, match="depth"):
            reranker.rerank(QUERY, hits(), depth=0)
        with pytest.raises(TypeError, match="sequence of str"):
            reranker.score(QUERY, "one passage")
        with pytest.raises(ConfigError, match="query"):
            reranker.score("  ", PASSAGES)
