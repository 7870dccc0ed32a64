"""Hand-made cases pinning each QA metric, including the official SQuAD edge cases."""
from __future__ import annotations

import pytest

from eval.qa_metrics import (
    QAScores,
    aggregate,
    answer_accuracy,
    exact_match,
    f1_score,
    normalize_answer,
    r_precision,
    recall_at_k,
    score_example,
)
from indexers.types import Hit


@pytest.mark.parametrize("raw,norm", [
    ("The Eiffel Tower.", "eiffel tower"),           # article + punctuation + case
    ("a  an   the", ""),                             # only articles
    ("Anne's  \"book\"!", "annes book"),             # ASCII punctuation removed, not replaced by space
    ("theatre", "theatre"),                          # article only as a whole word
    ("Café Müller", "café müller"),                  # unicode letters kept
    ("1,000–2,000", "1000–2000"),                    # en dash is not ASCII punctuation: kept (official script)
    ("", ""),
])
def test_normalize_answer(raw, norm):
    assert normalize_answer(raw) == norm


def test_exact_match_edge_cases():
    assert exact_match("the Eiffel Tower.", ["Eiffel tower"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel tower"]) == 0.0
    assert exact_match("Paris", ["London", "paris!"]) == 1.0          # max over golds
    assert exact_match("", ["Paris"]) == 0.0                          # empty prediction
    assert exact_match("The", [""]) == 1.0                            # both normalise to empty
    assert exact_match("Paris", []) == 0.0                            # no golds
    assert exact_match("Paris", "Paris") == 1.0                       # a single gold string


def test_f1_hand_values():
    # [cat, sat, on, mat] vs [cat, on, mat]: p = 3/4, r = 1
    assert f1_score("the cat sat on the mat", ["cat on mat"]) == pytest.approx(6 / 7)
    # repeated tokens count by multiset: x x y vs x y y -> 2 common, p = r = 2/3
    assert f1_score("x x y", ["x y y"]) == pytest.approx(2 / 3)
    assert f1_score("dog", ["cat"]) == 0.0
    # max over golds
    assert f1_score("New York City", ["York", "new york city"]) == 1.0
    assert f1_score("New York", ["York", "Boston"]) == pytest.approx(2 / 3)


def test_f1_empty_cases_follow_squad_v2():
    assert f1_score("", ["Paris"]) == 0.0        # empty prediction
    assert f1_score("the", ["a"]) == 1.0         # both empty after normalisation
    assert f1_score("Paris", ["the"]) == 0.0     # empty gold, non-empty prediction
    assert f1_score("Paris", []) == 0.0


def test_answer_accuracy_with_aliases():
    assert answer_accuracy("She was Chief of Protocol [1]", ["Chief of Protocol"]) == 1.0
    assert answer_accuracy("NYC", ["New York City", "NYC"]) == 1.0    # an alias
    assert answer_accuracy("in 1990", ["1"]) == 0.0                   # whole tokens only
    assert answer_accuracy("The Beatles!", ["beatles"]) == 1.0
    assert answer_accuracy("", ["Paris"]) == 0.0
    assert answer_accuracy("anything", ["the"]) == 0.0               # empty normalised gold never counts


def test_r_precision_kilt_definition():
    assert r_precision(["a", "b", "a", "c"], {"a", "c"}) == 0.5       # deduplicated, top-R with R = 2
    assert r_precision(["a", "a", "c"], {"a", "c"}) == 1.0
    assert r_precision(["x", "a"], {"a"}) == 0.0
    assert r_precision([], {"a"}) == 0.0
    with pytest.raises(ValueError):
        r_precision(["a"], set())


def test_recall_at_k():
    assert recall_at_k(["a", "b", "c"], {"a", "c"}, 2) == 0.5
    assert recall_at_k(["a", "a", "c"], {"a", "c"}, 2) == 1.0          # duplicates do not use up k
    assert recall_at_k(["a"], {"a", "c"}, 10) == 0.5
    with pytest.raises(ValueError):
        recall_at_k(["a"], {"a"}, 0)


def _hit(pid: str, title: str = "") -> Hit:
    return Hit(id=pid, score=1.0, doc_id=pid.split("#")[0], title=title)


def test_score_example_passage_page_and_kilt():
    hits = [_hit("d1#0", "Paris"), _hit("d9#0", "Rome"), _hit("d2#3", "France")]
    s = score_example("Paris", ["paris"], hits, supporting_ids=["d1", "d2"], provenance_pages=["Paris", "France"], k=3)
    assert (s.em, s.f1, s.accuracy) == (1.0, 1.0, 1.0)
    assert s.r_precision == 0.5 and s.r_precision_passage == 0.5     # top-2 = Paris/d1, Rome/d9
    assert s.support_recall == 1.0                                      # both supporting docs within k = 3
    assert (s.kilt_em, s.kilt_f1) == (0.0, 0.0)                         # answer right, provenance incomplete
    full = score_example("Paris", ["paris"], hits[::2], supporting_ids=["d1", "d2"])
    assert full.r_precision == 1.0 and (full.kilt_em, full.kilt_f1) == (1.0, 1.0)  # pages fall back to doc ids


def test_score_example_matches_passage_ids_and_dicts():
    hits = [{"id": "d1#2", "doc_id": "d1", "title": "T"}]
    assert score_example("x", ["y"], hits, supporting_ids=["d1#2"]).r_precision_passage == 1.0
    assert score_example("x", ["y"], hits, supporting_ids=["d1#0"]).r_precision_passage == 0.0


def test_no_provenance_gives_none_and_aggregate_skips_it():
    a = score_example("Paris", ["Paris"], [])
    assert a.r_precision is None and a.support_recall is None and a.kilt_em is None
    b = score_example("Rome", ["Paris"], [_hit("d1#0")], supporting_ids=["d1"])
    agg = aggregate([a, b])
    assert agg["em"] == 0.5 and agg["r_precision"] == 1.0 and agg["kilt_em"] == 0.0
    assert aggregate([QAScores(1, 1, 1, None, None, None, None, None)])["support_recall"] is None


def test_yes_no_questions_score_the_leading_yes_or_no():
    from eval.qa_metrics import exact_match, f1_score, yes_no_view

    assert exact_match("Yes, both are American.", ["yes"]) == 1.0 and f1_score("No. Only one is.", ["no"]) == 1.0
    assert exact_match("Yes, both are American.", ["no"]) == 0.0 and f1_score("Yes indeed", ["no"]) == 0.0
    assert yes_no_view("Yes, Paris", ["Paris"]) == "Yes, Paris"  # not a yes/no question: unchanged
    assert exact_match("Yesterday", ["yes"]) == 0.0  # a word, not a leading yes
    assert exact_match("Both are American", ["yes"]) == 0.0
