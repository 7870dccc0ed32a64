"""The dense store: queries embedded by the index's embedder, searched by inner product (indexers.dense)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from indexers.dense import DenseIndex, DenseParams, load_vectors
from indexers.errors import IndexFormatError
from indexers.segments import SegmentPart
from indexers.stores.base import BuildEnv, LoadEnv, Ranked, StoreStats, check_mask, check_store_k
from indexers.stores.encoders import Encoders
from indexers.types import Passage

__all__ = ["DenseStore"]


def _embed_text(p: Passage) -> str:
    """The text a passage is embedded as: its title, a colon, its text."""
    return f"{p.title}: {p.text}" if p.title else p.text


class DenseStore:
    """A loaded dense store over segments; queries are embeddings [dim] float32. Each segment is searched
    (exactly when flat, with deleted rows masked) and the per-segment top-k merged by (score desc, row asc)."""

    name: ClassVar[str] = "dense"

    def __init__(self, segments: Sequence[tuple[DenseIndex, np.ndarray | None]], encoders: Encoders) -> None:
        self.segments = list(segments)
        self.offsets = np.cumsum([0] + [len(d) for d, _ in self.segments])
        self.index = self.segments[0][0] if len(self.segments) == 1 else None  # the one segment's DenseIndex
        self.encoders = encoders

    @property
    def n_rows(self) -> int:
        return int(self.offsets[-1])

    def prepare(self, queries: Sequence[str], threads: int | None = None) -> np.ndarray:
        return self.encoders.embedder(threads).embed_queries(list(queries))  # [n_q, dim]

    def search_batch(self, queries: Sequence[np.ndarray], k: int, mask: np.ndarray | None = None) -> list[Ranked]:
        k, mask = check_store_k(k), check_mask(mask, self.n_rows)
        if len(queries) == 0:
            return []
        q = np.asarray(queries)
        per_seg = []
        for (dense, live), off in zip(self.segments, self.offsets.tolist()):
            m = live if mask is None else (mask[off:off + len(dense)] if live is None else live & mask[off:off + len(dense)])
            rows, scores = dense.search(q, k, m)
            per_seg.append((np.where(rows >= 0, rows + off, -1), scores))
        out = []
        for i in range(len(q)):
            rows = np.concatenate([r[i] for r, _ in per_seg])
            scores = np.concatenate([s[i] for _, s in per_seg])
            ok = rows >= 0
            rows, scores = rows[ok], scores[ok]
            order = np.lexsort((rows, -scores))[:k]
            out.append((rows[order], scores[order]))
        return out

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
    def write_deleted(cls, part: SegmentPart, removed: Sequence[Passage], directory: Path, params: DenseParams,
                      encoders: Encoders) -> None:
        """Nothing: inner products need no collection statistics; deleted rows are masked."""

    @classmethod
    def write_state(cls, before, previous, added, removed, after, directory, params, encoders) -> None:
        """Nothing: no generation-wide state."""

    @classmethod
    def load(cls, directory: Path, env: LoadEnv) -> "DenseStore":
        return cls([(DenseIndex.load(directory), None)], env.encoders)

    @classmethod
    def open(cls, parts: Sequence[SegmentPart], state: Path | None, env: LoadEnv) -> "DenseStore":
        return cls([(DenseIndex.load(p.directory), p.live) for p in parts], env.encoders)


def _vectors(passages: Sequence[Passage], params: DenseParams, env: BuildEnv) -> tuple[np.ndarray, int]:
    """Embeddings [n, dim] float32 for `passages`, reusing the vectors of replaced segments (a merge) for
    unchanged (id, content) pairs; and how many passages were embedded."""
    prev = env.previous if env.previous is not None and DenseStore.name in env.previous.stores else None
    reuse = prev.rows() if prev is not None else {}
    hashes = env.hashes
    todo = [r for r, p in enumerate(passages) if (p.id, str(hashes[r])) not in reuse]
    embedder = env.encoders.embedder() if todo or prev is None else None
    old = [load_vectors(d / DenseStore.name) for d in prev.segments] if prev is not None else []
    dim = embedder.dim if embedder is not None else old[0].shape[1]
    vectors = np.empty((len(passages), dim), dtype=np.float32)  # [n_passages, dim]
    for k, vecs in enumerate(old):
        if vecs.shape[1] != dim:
            raise IndexFormatError(f"{prev.segments[k]} has {vecs.shape[1]}-d embeddings, the embedder makes "
                                   f"{dim}-d; rebuild the index")
    for r, p in enumerate(passages):
        j = reuse.get((p.id, str(hashes[r])))
        if j is not None:
            vectors[r] = old[j[0]][j[1]]
    if todo:
        vectors[todo] = embedder.embed_passages([_embed_text(passages[r]) for r in todo], progress=env.progress)
    return vectors, len(todo)
