"""passage_text: the one rendering of a passage that prompts, token budgets and rerankers share."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from indexers.types import passage_text


def test_title_then_text_with_whitespace_collapsed():
    assert passage_text("Paris", "The  capital\nof France.\t") == "Paris: The capital of France."
    assert passage_text("", " body  ") == "body"
    assert passage_text("  ", "body") == "body"  # a blank title is no title
    assert passage_text(" Two  words ", "x") == "Two words: x"
    assert passage_text("Paris", " ") == "Paris"


@given(st.text(max_size=30), st.text(max_size=60))
def test_no_whitespace_runs_and_the_words_survive_in_order(title, text):
    out = passage_text(title, text)
    assert out == " ".join(out.split())  # one space between words, none at the ends
    t = title.split()
    assert out.split() == (t[:-1] + [t[-1] + ":"] if t and text.split() else t) + text.split()


def test_a_hit_serialises_one_way_and_back():
    from indexers.types import Hit

    h = Hit(id="d1#2", score=1.5, doc_id="d1", title="T", text="body", start=10, end=14)
    d = h.to_dict()
    assert d == {"id": "d1#2", "doc_id": "d1", "score": 1.5, "title": "T", "text": "body", "start": 10, "end": 14}
    assert Hit(**d) == h and isinstance(d["score"], float)

