import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexers.errors import ConfigError
from retrievers.selector import (
    DEFAULT_MIN_PASSAGES,
    Candidate,
    candidate_text,
    jaccard_similarity,
    select_passages,
)

REASONS = {"budget", "score_gap", "below_ratio", "redundant", "max_passages"}


def words(text: str) -> int:
    return len(text.split())


def cand(i, text, score, title=""):
    return Candidate(id=f"d{i}", text=text, title=title, score=score)


def ranked(texts_scores):
    return [cand(i, t, s) for i, (t, s) in enumerate(texts_scores)]


_VOCAB = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]
_text = st.lists(st.sampled_from(_VOCAB), max_size=12).map(" ".join)
_candidates = st.lists(st.tuples(_text, st.floats(0, 100)), max_size=12).map(
    lambda pairs: [cand(i, t, s) for i, (t, s) in enumerate(sorted(pairs, key=lambda p: -p[1]))]
)
_knobs = st.fixed_dictionaries(
    {
        "max_passages": st.none() | st.integers(3, 8),
        "min_passages": st.integers(0, 3),
        "gap": st.floats(0, 1),
        "min_score_ratio": st.floats(0, 1),
        "redundancy": st.none() | st.floats(0, 1),
    }
)


@given(_candidates, st.integers(0, 40), _knobs)
def test_selection_invariants(cands, budget, knobs):
    sel = select_passages(cands, budget, words, **knobs)
    assert sel.tokens_used == sum(words(candidate_text(c)) for c in sel.chosen) <= budget
    # chosen is a subsequence of the ranking, in rank order
    pos = [cands.index(c) for c in sel.chosen]
    assert pos == sorted(pos)
    # every candidate is accounted for exactly once
    assert sorted([c.id for c in sel.chosen] + [c.id for c, _ in sel.dropped]) == sorted(c.id for c in cands)
    assert all(r in REASONS for _, r in sel.dropped)
    assert sel.ids == [c.id for c in sel.chosen]
    if knobs["max_passages"] is not None:
        assert len(sel.chosen) <= knobs["max_passages"]
    if cands and words(candidate_text(cands[0])) <= budget:
        assert cands[0] in sel.chosen  # the best passage is taken whenever it fits
    assert select_passages(cands, budget, words, **knobs) == sel  # deterministic


@given(_candidates, st.integers(0, 3), st.floats(0, 1), st.floats(0, 1))
def test_min_passages_suspends_score_rules(cands, min_passages, gap, ratio):
    sel = select_passages(
        cands, 10**6, words, min_passages=min_passages, gap=gap, min_score_ratio=ratio, redundancy=None
    )
    assert len(sel.chosen) >= min(min_passages, len(cands))
    assert {r for _, r in sel.dropped} <= {"score_gap", "below_ratio"}


@given(_candidates, st.integers(0, 40))
def test_dropped_reasons_are_true(cands, budget):
    sel = select_passages(cands, budget, words, min_passages=0, gap=1.0, min_score_ratio=0.0)
    chosen_before = []
    for c in cands:
        if c in sel.chosen:
            chosen_before.append(c)
            continue
        reason = {d.id: r for d, r in sel.dropped}[c.id]
        if reason == "redundant":
            assert any(jaccard_similarity(c, x) > 0.9 for x in chosen_before)
        else:
            assert reason == "budget"
            used = sum(words(candidate_text(x)) for x in chosen_before)
            assert used + words(candidate_text(c)) > budget


def test_budget_skips_long_passage_and_continues():
    cands = ranked([("a b c", 10.0), ("one two three four five six", 9.5), ("d e", 9.0)])
    sel = select_passages(cands, 6, words)
    assert sel.ids == ["d0", "d2"]
    assert [(c.id, r) for c, r in sel.dropped] == [("d1", "budget")]
    assert sel.tokens_used == 5


def test_first_passage_too_long_and_zero_budget():
    cands = ranked([("w " * 50, 10.0), ("short one", 9.0)])
    assert select_passages(cands, 10, words).ids == ["d1"]
    sel = select_passages(cands, 0, words)
    assert sel.chosen == [] and [r for _, r in sel.dropped] == ["budget", "budget"] and sel.tokens_used == 0


def test_title_is_counted():
    c = cand(0, "body text", 1.0, title="Some Title")
    assert candidate_text(c) == "Some Title: body text"  # as the prompt lists it
    assert select_passages([c], 3, words).chosen == []
    assert select_passages([c], 4, words).tokens_used == 4


def test_score_gap_stops_the_walk():
    # normalised 1.0, 0.9, 0.4, 0.35: the 0.9 -> 0.4 fall exceeds gap=0.3
    cands = ranked([("a", 0.9), ("b", 0.81), ("c", 0.36), ("d", 0.315)])
    sel = select_passages(cands, 100, words, gap=0.3, min_score_ratio=0.0, min_passages=1)
    assert sel.ids == ["d0", "d1"]
    assert [r for _, r in sel.dropped] == ["score_gap", "score_gap"]


def test_below_ratio_is_scale_free():
    for scale in (1 / 61, 1.0, 25.0):  # RRF-sized, probability-sized, BM25-sized
        cands = ranked([("a", 1.0 * scale), ("b", 0.8 * scale), ("c", 0.6 * scale), ("d", 0.2 * scale)])
        sel = select_passages(cands, 100, words, gap=0.5, min_score_ratio=0.5, min_passages=1)
        assert sel.ids == ["d0", "d1", "d2"]
        assert [(c.id, r) for c, r in sel.dropped] == [("d3", "below_ratio")]


def test_min_passages_overrides_score_rules():
    cands = ranked([("a", 10.0), ("b", 1.0), ("c", 0.5)])
    assert select_passages(cands, 100, words, min_passages=1).ids == ["d0"]
    sel = select_passages(cands, 100, words)
    assert DEFAULT_MIN_PASSAGES == 2  # what this case relies on
    assert sel.ids == ["d0", "d1"]
    assert [(c.id, r) for c, r in sel.dropped] == [("d2", "below_ratio")]  # ratio is checked before gap


def test_max_passages():
    cands = ranked([(t, 1.0) for t in "abcde"])
    sel = select_passages(cands, 100, words, max_passages=2)
    assert sel.ids == ["d0", "d1"]
    assert [r for _, r in sel.dropped] == ["max_passages"] * 3


def test_redundant_duplicates_are_skipped_and_citations_kept():
    text = "Paris is the capital and largest city of France"
    cands = [
        Candidate("wiki:1", text, "Paris", 3.0),
        Candidate("wiki:1-copy", text.upper() + ".", "Paris", 2.9),  # same words, other case and punctuation
        Candidate("wiki:2", "The Seine flows through Paris", "Seine", 2.8),
    ]
    sel = select_passages(cands, 100, words)
    assert sel.ids == ["wiki:1", "wiki:2"]
    assert [(c.id, r) for c, r in sel.dropped] == [("wiki:1-copy", "redundant")]
    assert select_passages(cands, 100, words, redundancy=None).ids == ["wiki:1", "wiki:1-copy", "wiki:2"]


def test_injected_similarity():
    vectors = {"a": (1.0, 0.0), "b": (0.96, 0.28), "c": (0.0, 1.0)}

    def cosine(x, y):
        u, v = vectors[x.id], vectors[y.id]
        return sum(p * q for p, q in zip(u, v))

    cands = [Candidate(i, f"text {i}", "", 1.0) for i in "abc"]
    sel = select_passages(cands, 100, words, similarity=cosine, redundancy=0.9)
    assert sel.ids == ["a", "c"] and sel.dropped == [(cands[1], "redundant")]


def test_jaccard():
    a, b = cand(0, "The cat sat", 1.0), cand(1, "the CAT ran", 1.0)
    assert jaccard_similarity(a, b) == pytest.approx(2 / 4)
    assert jaccard_similarity(cand(0, "", 1.0), cand(1, "", 1.0)) == 1.0


def test_all_zero_scores_keep_score_rules_off():
    cands = ranked([("a", 0.0), ("b", 0.0)])
    assert select_passages(cands, 100, words).ids == ["d0", "d1"]


@pytest.mark.parametrize(
    "cands, kwargs, match",
    [
        (ranked([("a", 1.0), ("b", 2.0)]), {}, "ranked best first"),
        ([cand(0, "a", 1.0), cand(0, "b", 0.5)], {}, "ids repeat"),
        (ranked([("a", -1.0)]), {}, "sigmoid"),
        (ranked([("a", float("nan"))]), {}, "finite"),
        ([], {"budget_tokens": -1}, "budget_tokens"),
        ([], {"gap": 1.5}, "gap"),
        ([], {"min_score_ratio": -0.1}, "min_score_ratio"),
        ([], {"min_passages": 3, "max_passages": 2}, "max_passages"),
        ([], {"min_passages": -1}, "min_passages"),
        ([], {"redundancy": float("nan")}, "redundancy"),
    ],
)
def test_bad_arguments_raise_config_error(cands, kwargs, match):
    kwargs = {"budget_tokens": 10, **kwargs}
    with pytest.raises(ConfigError, match=match):
        select_passages(cands, kwargs.pop("budget_tokens"), words, **kwargs)


def test_bad_token_count_raises():
    with pytest.raises(ConfigError, match="count_tokens"):
        select_passages(ranked([("a", 1.0)]), 10, lambda s: -1)

