"""retrievers.rerank: spec parsing, the rerank contract (sorted, tail below, scores in [0, 1]), the LLM judge's
prefix-KV reuse against a plain full-sequence pass, and the cross-encoder path on a model built from MiniLM."""
from __future__ import annotations


import pytest

from indexers.errors import ConfigError
from indexers.types import Hit
from tests.support.reranker_conformance import RerankerConformance
from retrievers.rerank import (DEFAULT_RERANKER, CrossEncoderReranker, LLMJudge, NoReranker, Reranker, hit_text,
                               load_reranker, rerank_hits)


def _hits(n: int) -> list[Hit]:
    return [Hit(id=f"p{i}", score=float(n - i), title=f"T{i}", text=f"text {i}") for i in range(n)]


# --------------------------------------------------------------------------- specs and the contract


def test_load_reranker_parses_specs_cheaply(tmp_path):
    assert isinstance(load_reranker("none"), NoReranker)
    judge = load_reranker("llm:smollm-135m", threads=1, batch_size=4)
    assert isinstance(judge, LLMJudge) and judge.model is None and judge.batch_size == 4  # nothing loaded yet
    assert load_reranker("llm").name.startswith("llm:")
    (tmp_path / "config.json").write_text("{}")
    assert isinstance(load_reranker(f"cross-encoder:{tmp_path}"), CrossEncoderReranker)
    assert isinstance(load_reranker(DEFAULT_RERANKER), Reranker)


@pytest.mark.parametrize("spec", ["", "bm25", "cross-encoder:", "none:x", "monot5"])
def test_unknown_spec_lists_the_valid_ones(spec):
    with pytest.raises(ConfigError, match="none|non-empty"):
        load_reranker(spec)


def test_cross_encoder_dir_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="no config.json"):
        load_reranker(f"cross-encoder:{tmp_path / 'nope'}")


def test_rerank_hits_sorts_head_and_scores_tail_below():
    hits = _hits(6)
    out = rerank_hits(hits, [0.1, 0.9, 0.5], depth=3)
    assert [h.id for h in out] == ["p1", "p2", "p0", "p3", "p4", "p5"]
    scores = [h.score for h in out]
    assert scores == sorted(scores, reverse=True) and scores[3] < 0.1 and min(scores) > 0
    assert out[0].text == "text 1" and out[0].title == "T1"  # the hit's fields travel with it
    with pytest.raises(ValueError):
        rerank_hits(hits, [0.1], depth=3)


def test_no_reranker_keeps_the_ranking():
    hits = _hits(4)
    assert NoReranker().rerank("q", hits) == hits
    with pytest.raises(ConfigError):
        NoReranker().rerank("q", hits, depth=0)


def test_hit_text_puts_the_title_first():
    assert hit_text(Hit(id="a", score=1, title="Paris", text="body  text")) == "Paris: body text"
    assert hit_text(Hit(id="a", score=1, text="body")) == "body"


# --------------------------------------------------------------------------- the LLM judge


# --------------------------------------------------------------------------- cross-encoder:PATH


# --------------------------------------------------------------------------- conformance of every backend

class TestNoRerankerConformance(RerankerConformance):
    scores_in_unit = False

    @pytest.fixture
    def reranker(self):
        return NoReranker()


class TestLTRConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self):
        return load_reranker("ltr")
