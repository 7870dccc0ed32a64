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
