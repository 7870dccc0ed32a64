"""The dense store: queries embedded by the index's embedder, searched by inner product (indexers.dense)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from indexers.dense import DenseIndex, DenseParams, load_vectors
from indexers.errors import IndexFormatError
from indexers.stores.base import BuildEnv, LoadEnv, Ranked, StoreStats, check_mask, check_store_k
from indexers.stores.encoders import Encoders
from indexers.types import Passage

__all__ = ["DenseStore"]


def _embed_text(p: Passage) -> str:
    """The text a passage is embedded as: its title, a colon, its text."""
    return f"{p.title}: {p.text}" if p.title else p.text


class DenseStore:
    """A loaded dense store; queries are embeddings [dim] float32."""

    name: ClassVar[str] = "dense"

    def __init__(self, index: DenseIndex, encoders: Encoders) -> None:
        self.index = index
        self.encoders = encoders

    @property
    def n_rows(self) -> int:
        return len(self.index)

    def prepare(self, queries: Sequence[str], threads: int | None = None) -> np.ndarray:
        return self.encoders.embedder(threads).embed_queries(list(queries))  # [n_q, dim]

    def search_batch(self, queries: Sequence[np.ndarray], k: int, mask: np.ndarray | None = None) -> list[Ranked]:
        k, mask = check_store_k(k), check_mask(mask, self.n_rows)
        if len(queries) == 0:
            return []
        rows, scores = self.index.search(np.asarray(queries), k, mask)
        return [(r[r >= 0], s[r >= 0]) for r, s in zip(rows, scores)]

    def stats(self) -> StoreStats:
        return StoreStats(self.n_rows)

    def warm_up(self, threads: int | None = None) -> None:
        self.encoders.embedder(threads)

    @classmethod
    def build(cls, passages: Sequence[Passage], directory: Path, params: DenseParams, env: BuildEnv) -> int:
        vectors, n_embedded = _vectors(passages, params, env)
        DenseIndex(vectors, params).save(directory)
        return n_embedded

    @classmethod
    def load(cls, directory: Path, env: LoadEnv) -> "DenseStore":
        return cls(DenseIndex.load(directory), env.encoders)


def _vectors(passages: Sequence[Passage], params: DenseParams, env: BuildEnv) -> tuple[np.ndarray, int]:
    """Embeddings [n, dim] float32 for `passages`, reusing the previous generation's vectors for unchanged
    (id, content) pairs; and how many passages were embedded."""
    prev = env.previous if env.previous is not None and DenseStore.name in env.previous.stores else None
    reuse = prev.rows() if prev is not None else {}
    old_vecs = load_vectors(prev.data / DenseStore.name) if prev is not None else None
    hashes = env.hashes
    todo = [r for r, p in enumerate(passages) if (p.id, str(hashes[r])) not in reuse]
    embedder = env.encoders.embedder()
    vectors = np.empty((len(passages), embedder.dim), dtype=np.float32)  # [n_passages, dim]
    if old_vecs is not None:
        if old_vecs.shape[1] != embedder.dim:
            raise IndexFormatError(f"{prev.data} has {old_vecs.shape[1]}-d embeddings, {embedder.name} makes "
                                   f"{embedder.dim}-d; rebuild the index")
        for r, p in enumerate(passages):
            j = reuse.get((p.id, str(hashes[r])))
            if j is not None:
                vectors[r] = old_vecs[j]
    if todo:
        vectors[todo] = embedder.embed_passages([_embed_text(passages[r]) for r in todo], progress=env.progress)
    return vectors, len(todo)
