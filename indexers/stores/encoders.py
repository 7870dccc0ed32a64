"""The text encoders an index's stores share, each loaded on first use: the dense embedder, the n-gram tokenizer.

They are held apart from the stores so that an index (or a build) loads each model once and a reopened index
can take over the models of the one it replaces.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from indexers.dense import DenseParams
from indexers.ngram import NgramParams, encode, ngram_text, ngram_tokenizer

__all__ = ["Encoders"]


class Encoders:
    """Lazily loaded encoders for one index's build parameters; `embedder`/`tokenizer` preset them (tests)."""

    def __init__(self, dense: DenseParams, ngram: NgramParams, *, embedder: Any = None, tokenizer: Any = None,
                 threads: int | None = None) -> None:
        self.dense = dense
        self.ngram = ngram
        self.threads = threads
        self._embedder = embedder
        self._tokenizer = tokenizer

    def embedder(self, threads: int | None = None) -> Any:
        """The embedder named in the dense params (loaded on first use with `threads`, else the default)."""
        if self._embedder is None:
            from indexers.embedders import load_embedder

            self._embedder = load_embedder(self.dense.embedder, threads=threads or self.threads)
        return self._embedder

    def ngram_tokenizer(self) -> Any:
        """The generator tokenizer the n-gram store is built with (loaded on first use)."""
        if self._tokenizer is None:
            self._tokenizer = ngram_tokenizer(self.ngram)
        return self._tokenizer

    def ngram_tokens(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of queries as the n-gram store sees text (the build's leading-space convention)."""
        return encode(self.ngram_tokenizer(), [ngram_text(t, collapse_spaces=self.ngram.collapse_spaces) for t in texts])

    def share(self, other: "Encoders") -> None:
        """Take `other`'s loaded encoders where they are the ones these params need and none is loaded yet."""
        if other.dense.embedder == self.dense.embedder and self._embedder is None:
            self._embedder = other._embedder
        if other.ngram == self.ngram and self._tokenizer is None:
            self._tokenizer = other._tokenizer
