"""The BM25 store: analyzer tokens searched by the exact top-k kernel over indexers.bm25's postings."""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from indexers.bm25 import BM25Index, BM25Params, build_bm25, load_bm25
from indexers.errors import IndexFormatError
from indexers.stores.base import BuildEnv, LoadEnv, Ranked, StoreStats, check_mask, check_store_k, masked_topk
from indexers.text import DEFAULT_ANALYZER, tokenize
from indexers.types import Passage

__all__ = ["BM25Store"]


class _DocFreqs(Mapping[str, int]):
    """term -> rows holding it, read off the postings offsets (no copy of the vocabulary)."""

    def __init__(self, index: BM25Index) -> None:
        self._vocab, self._indptr = index.vocab, index.indptr

    def __getitem__(self, term: str) -> int:
        i = self._vocab[term]
        return int(self._indptr[i + 1] - self._indptr[i])

    def __iter__(self) -> Iterator[str]:
        return iter(self._vocab)

    def __len__(self) -> int:
        return len(self._vocab)


class BM25Store:
    """A loaded BM25 store; queries are analyzer token lists."""

    name: ClassVar[str] = "bm25"

    def __init__(self, index: BM25Index) -> None:
        self.index = index

    @property
    def n_rows(self) -> int:
        return self.index.n_docs

    def prepare(self, queries: Sequence[str], threads: int | None = None) -> list[list[str]]:
        return [tokenize(q) for q in queries]

    def search_batch(self, queries: Sequence[Sequence[str]], k: int, mask: np.ndarray | None = None) -> list[Ranked]:
        k, mask = check_store_k(k), check_mask(mask, self.n_rows)
        if mask is None:
            return self.index.search_batch(queries, k)
        return [masked_topk(lambda depth, q=q: self.index.search(q, depth), k, mask, self.n_rows) for q in queries]

    def stats(self) -> StoreStats:
        return StoreStats(self.n_rows, int(self.index.doc_lens.sum()), _DocFreqs(self.index))

    def warm_up(self, threads: int | None = None) -> None:
        """Nothing to load: the analyzer is pure Python."""

    @classmethod
    def build(cls, passages: Sequence[Passage], directory: Path, params: BM25Params, env: BuildEnv) -> int:
        it = passages
        if env.progress:
            from tqdm.auto import tqdm

            it = tqdm(passages, desc="bm25: tokenizing", unit="psg", leave=False)
        build_bm25([tokenize(f"{p.title} {p.text}") for p in it], params).save(directory)
        return len(passages)

    @classmethod
    def load(cls, directory: Path, env: LoadEnv) -> "BM25Store":
        analyzer = env.recorded.get("analyzer")
        if analyzer != DEFAULT_ANALYZER.name:
            raise IndexFormatError(
                f"index {env.root} was tokenized with analyzer {analyzer!r}, this adarag uses "
                f"{DEFAULT_ANALYZER.name!r}: rebuild it with `adarag index CORPUS --out {env.root} --rebuild`")
        return cls(load_bm25(directory))

    @classmethod
    def write_deleted(cls, part, removed, directory, params, encoders) -> None:
        directory.mkdir(parents=True, exist_ok=True)  # PROVISIONAL

    @classmethod
    def write_state(cls, parts, added, removed, previous, directory, params, encoders) -> None:
        """PROVISIONAL"""

    @classmethod
    def open(cls, parts, state, env) -> "BM25Store":
        if len(parts) != 1 or parts[0].live is not None:
            raise IndexFormatError("PROVISIONAL: segmented bm25 not integrated yet")
        cls.load(parts[0].directory, env)
        return cls(load_bm25(parts[0].directory))
