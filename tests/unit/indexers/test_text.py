"""indexers.text: the shared analyzer."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from indexers.errors import ConfigError
from indexers.text import DEFAULT_ANALYZER, ENGLISH_STOPWORDS, Analyzer, lone_surrogate, tokenize


def test_lowercase_stopwords_stems():
    assert tokenize("The Running CATS of Paris, and the dogs!") == ["run", "cat", "pari", "dog"]


def test_unicode_words_and_numbers():
    assert tokenize("Café naïve 1943 x_y") == ["café", "naïv", "1943", "x_i"]


def test_settings_and_name():
    assert Analyzer(stopwords=False, stemmer=None).tokenize("The Running") == ["the", "running"]
    assert Analyzer(stemmer=None).tokenize("The Running") == ["running"]
    assert DEFAULT_ANALYZER.name != Analyzer(stemmer=None).name
    assert "the" in ENGLISH_STOPWORDS
    with pytest.raises(ConfigError, match="stemmer language"):
        Analyzer(stemmer="klingon")


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80))
def test_deterministic_and_clean(text):
    out = tokenize(text)
    assert out == tokenize(text)  # cache hit path == miss path
    assert all(out)
    assert not set(out) & {"the", "and", "of"}


@pytest.mark.parametrize("text, expected", [
    ("", False), ("plain", False), ("é 日本 😀", False), ("\ud800", True), ("a\udfffb", True), ("\ud83d\ude00", True),
])
def test_lone_surrogate(text, expected):
    assert lone_surrogate(text) is expected
