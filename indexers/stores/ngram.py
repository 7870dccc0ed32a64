"""The n-gram store: queries as generator token ids, ranked by SEAL-style n-gram retrieval over the FM-index."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from indexers.errors import IndexFormatError
from indexers.ngram import NgramIndex, NgramParams, build_ngram, encode, load_ngram, ngram_text
from indexers.ngram_search import search
from indexers.stores.base import BuildEnv, LoadEnv, Ranked, StoreStats, check_mask, check_store_k
from indexers.stores.encoders import Encoders
from indexers.types import Passage

__all__ = ["NgramStore"]


class NgramStore:
    """A loaded n-gram store; queries are token-id lists from the index's n-gram tokenizer."""

    name: ClassVar[str] = "ngram"

    def __init__(self, index: NgramIndex, encoders: Encoders) -> None:
        self.index = index
        self.encoders = encoders

    @property
    def n_rows(self) -> int:
        return self.index.n_docs

    def prepare(self, queries: Sequence[str], threads: int | None = None) -> list[list[int]]:
        return self.encoders.ngram_tokens(queries)

    def search_batch(self, queries: Sequence[Sequence[int]], k: int, mask: np.ndarray | None = None) -> list[Ranked]:
        k, mask = check_store_k(k), check_mask(mask, self.n_rows)
        return [search(self.index, q, k, mask=mask) for q in queries]

    def stats(self) -> StoreStats:
        """Rows and tokens (SEAL's F_total); n-gram counts come from the FM-index itself."""
        return StoreStats(self.n_rows, self.index.n_tokens)

    def warm_up(self, threads: int | None = None) -> None:
        self.encoders.ngram_tokenizer()

    @classmethod
    def build(cls, passages: Sequence[Passage], directory: Path, params: NgramParams, env: BuildEnv) -> int:
        tok = env.encoders.ngram_tokenizer()
        build_ngram(encode(tok, [ngram_text(p.text, p.title, params.collapse_spaces) for p in passages]),
                    params).save(directory)
        return len(passages)

    @classmethod
    def load(cls, directory: Path, env: LoadEnv) -> "NgramStore":
        return cls(load_ngram(directory), env.encoders)

    @classmethod
    def write_deleted(cls, part, removed, directory, params, encoders) -> None:
        directory.mkdir(parents=True, exist_ok=True)  # PROVISIONAL

    @classmethod
    def write_state(cls, before, previous, added, removed, after, directory, params, encoders) -> None:
        """PROVISIONAL"""

    @classmethod
    def open(cls, parts, state, env) -> "NgramStore":
        if len(parts) != 1 or parts[0].live is not None:
            raise IndexFormatError("PROVISIONAL: segmented ngram not integrated yet")
        cls.load(parts[0].directory, env)
        return cls(load_ngram(parts[0].directory), env.encoders)
