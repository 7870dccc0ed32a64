"""The text analyzer shared by indexing and querying: lowercase, unicode words, English stopwords, Snowball stems.

Index and query MUST use the same analyzer; its `name` goes into the index manifest so a mismatch is caught.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Callable

from indexers.errors import ConfigError, missing

__all__ = ["Analyzer", "DEFAULT_ANALYZER", "ENGLISH_STOPWORDS", "tokenize", "plain_words", "lone_surrogate"]

_WORD = re.compile(r"\w+", re.UNICODE)
_SURROGATE = re.compile("[\ud800-\udfff]")

# A fixed list (NLTK's English list, lowercased, without apostrophe forms) so indexes never change with a library.
ENGLISH_STOPWORDS: frozenset[str] = frozenset("""
a about above after again against ain all am an and any are aren as at be because been before being below
between both but by can couldn d did didn do does doesn doing don down during each few for from further had
hadn has hasn have haven having he her here hers herself him himself his how i if in into is isn it its itself
just ll m ma me mightn more most mustn my myself needn no nor not now o of off on once only or other our ours
ourselves out over own re s same shan she should shouldn so some such t than that the their theirs them
themselves then there these they this those through to too under until up ve very was wasn we were weren
what when where which while who whom why will with won wouldn y you your yours yourself yourselves
""".split())

_STEM_CACHE_MAX = 1 << 20  # distinct words cached per language (a few tens of MB at most)
_stem_lock = threading.Lock()
_stem_caches: dict[str, tuple[dict[str, str], Callable[[str], str]]] = {}


def _stem_cache(language: str) -> tuple[dict[str, str], Callable[[str], str]]:
    """(word -> stem cache, stem function) for `language`; one PyStemmer object per language."""
    entry = _stem_caches.get(language)
    if entry is not None:
        return entry
    try:
        import Stemmer
    except ImportError as e:  # a core dependency, but keep the message actionable
        raise missing("core", "PyStemmer") from e
    with _stem_lock:
        entry = _stem_caches.get(language)
        if entry is None:
            try:
                stemmer = Stemmer.Stemmer(language)
            except KeyError as e:
                raise ConfigError(f"unknown stemmer language {language!r}; choose one of "
                                  f"{sorted(Stemmer.algorithms())}") from e
            entry = ({}, stemmer.stemWord)  # stemWord holds the GIL, so sharing it across threads is safe
            _stem_caches[language] = entry
    return entry


@dataclass(frozen=True)
class Analyzer:
    """Analyzer settings; `name` identifies them in index manifests."""

    stopwords: bool = True
    stemmer: str | None = "english"  # a PyStemmer language, or None for no stemming
    name: str = field(init=False)

    def __post_init__(self) -> None:
        if self.stemmer is not None:
            _stem_cache(self.stemmer)  # validate the language now, not at first query
        stem = self.stemmer or "none"
        object.__setattr__(self, "name", f"w+lower|stop={'en' if self.stopwords else 'none'}|stem={stem}|v1")

    def tokenize(self, text: str) -> list[str]:
        """Text -> analyzed terms, in order (duplicates kept)."""
        words = _WORD.findall(text.lower())
        if self.stopwords:
            words = [w for w in words if w not in ENGLISH_STOPWORDS]
        if self.stemmer is None:
            return words
        cache, stem = _stem_cache(self.stemmer)
        out = []
        for w in words:
            s = cache.get(w)
            if s is None:
                s = stem(w)
                if len(cache) < _STEM_CACHE_MAX:
                    cache[w] = s
            out.append(s)
        return out


DEFAULT_ANALYZER = Analyzer()


def tokenize(text: str) -> list[str]:
    """Analyze with the default analyzer (lowercase, `\\w+`, English stopwords, English Snowball stems)."""
    return DEFAULT_ANALYZER.tokenize(text)


def plain_words(text: str) -> str:
    """Lowercase word characters joined by single spaces: for "does this answer appear in that text" checks."""
    return " ".join(re.findall(r"\w+", text.lower()))


def lone_surrogate(text: str) -> bool:
    """True if `text` holds an unpaired UTF-16 surrogate (U+D800..U+DFFF), e.g. from a broken `\\ud8xx` escape:
    no UTF-8 encoder (SQL, tokenizers, JSON output) accepts one, so inputs are refused at the door."""
    return _SURROGATE.search(text) is not None
