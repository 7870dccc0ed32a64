"""The declared interface of a passage store (bm25, dense, ngram, ...) and the checks every store shares.

A store is built from the index's passages into its own sub-folder and loaded from it; row i of every store is
passage `ids[i]` of the index. A query is first `prepare`d (analyzer tokens, an embedding, token ids) and then
searched in batches. A row mask restricts a search to some rows without changing any score (a filter, as in
Lucene), so a masked top-k equals the unmasked ranking with the masked rows left out.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from indexers.errors import ConfigError, positive_int
from indexers.segments import SegmentPart
from indexers.stores.encoders import Encoders
from indexers.types import Passage

__all__ = ["Ranked", "StoreStats", "Previous", "BuildEnv", "LoadEnv", "Store", "StoreKind", "check_mask",
           "masked_topk", "check_store_k"]

Ranked = tuple[np.ndarray, np.ndarray]
"""One query's result: (rows [k'] int64, scores [k'] float), best first, ties by row ascending; k' <= k."""


@dataclass(frozen=True)
class StoreStats:
    """Collection statistics a store's scores depend on; summed over segments they give exact global scores.

    `df` maps a term to the rows holding it (BM25); stores whose scores need no such table leave it empty."""

    n_rows: int
    total_length: int = 0  # tokens over all rows (BM25's avgdl = total_length / n_rows)
    df: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Previous:
    """Segments a build replaces (a merge): a store may reuse their rows for unchanged (passage id, content hash)."""

    segments: tuple[Path, ...]  # the segment folders (row maps + one sub-folder per store)
    stores: tuple[str, ...]

    def rows(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(passage id, content hash) -> (segment number in `segments`, row), read on demand."""
        out: dict[tuple[str, str], tuple[int, int]] = {}
        for k, d in enumerate(self.segments):
            ids, hashes = np.load(d / "ids.npy", allow_pickle=False), np.load(d / "passage_hashes.npy", allow_pickle=False)
            out.update(((str(i), str(h)), (k, r)) for r, (i, h) in enumerate(zip(ids.tolist(), hashes.tolist())))
        return out


@dataclass(frozen=True)
class BuildEnv:
    """What a build may use beyond the passages and its own params."""

    encoders: Encoders  # the text encoders, each loaded on first use
    hashes: np.ndarray  # [n] str: content hash of each passage (with its id, the key for reuse)
    previous: Previous | None = None
    progress: bool = False


@dataclass(frozen=True)
class LoadEnv:
    """What a load may use beyond the store's folder: the index root (for messages) and its recorded params."""

    root: Path
    encoders: Encoders
    recorded: Mapping[str, Any] = field(default_factory=dict)  # the manifest's build params


@runtime_checkable
class Store(Protocol):
    """A loaded store: `n_rows` rows aligned with the index's passage ids, searched in batches."""

    name: ClassVar[str]  # registry name; also the store's sub-folder in an index

    @property
    def n_rows(self) -> int: ...

    def prepare(self, queries: Sequence[str], threads: int | None = None) -> Sequence[Any]:
        """Queries as this store searches them; `threads` is used if a query model loads now."""
        ...

    def search_batch(self, queries: Sequence[Any], k: int, mask: np.ndarray | None = None) -> list[Ranked]:
        """Top-k per prepared query; `mask` [n_rows] bool keeps only rows where it is True, exactly."""
        ...

    def stats(self) -> StoreStats:
        """The collection statistics its scores depend on (see StoreStats)."""
        ...

    def warm_up(self, threads: int | None = None) -> None:
        """Load the query model now (if any), so the first query does not pay for it."""
        ...


class StoreKind(Protocol):
    """How one kind of store is built, marked and opened (the class of a Store: its registry entry).

    An index is a list of segments (indexers.segments); a store writes one folder per segment, a deletion
    sidecar per segment with deleted rows, and optionally generation-wide state; `open` aggregates the segments
    into one Store whose results equal a one-segment build over the live rows (exactness is the contract)."""

    name: ClassVar[str]

    def build(self, passages: Sequence[Passage], directory: Path, params: Any, env: BuildEnv) -> int:
        """Write one segment's store over `passages` (row i = passages[i]) into `directory`; returns the rows
        computed rather than reused from `env.previous`. `params` is this store's field of BuildParams."""
        ...

    def load(self, directory: Path, env: LoadEnv) -> Store:
        """Open one segment without deletions (what `build` wrote), or raise IndexFormatError saying how to
        rebuild."""
        ...

    def write_deleted(self, part: SegmentPart, removed: Sequence[Passage], directory: Path, params: Any,
                      encoders: Encoders) -> None:
        """Write the sidecar for `part`'s deleted rows into `directory`: those of `part.deleted` (if any) plus
        `removed`, the passages this write deleted from it. A store that needs none writes nothing."""
        ...

    def write_state(self, before: Sequence[SegmentPart] | None, previous: Path | None, added: Sequence[Passage],
                    removed: Sequence[Sequence[Passage]], after: Sequence[SegmentPart], directory: Path,
                    params: Any, encoders: Encoders) -> None:
        """Write generation-wide state over the segments `after` into `directory` (or nothing). An update
        starts from the previous generation's segments `before` and state `previous`: this write added the
        live passages `added` and deleted `removed[i]` from `before[i]`. `before` is None for a new index."""
        ...

    def open(self, parts: Sequence[SegmentPart], state: Path | None, env: LoadEnv) -> Store:
        """Open the segments `parts` as one store, or raise IndexFormatError saying how to rebuild."""
        ...


def check_store_k(k: object) -> int:
    """k as a positive int, else ConfigError."""
    positive_int(k, "k")
    return int(k)


def check_mask(mask: object, n_rows: int) -> np.ndarray | None:
    """A row mask as a bool array [n_rows] (None passes through); anything else is a ConfigError."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != np.bool_ or m.shape != (n_rows,):
        raise ConfigError(f"mask must be a bool array of shape ({n_rows},), got {m.dtype} {m.shape}")
    return m


def masked_topk(search: Callable[[int], Ranked], k: int, mask: np.ndarray, n_rows: int) -> Ranked:
    """Exact top-k of the rows `mask` allows, from a search whose top-j is a prefix of its top-(j+1).

    Searches ever deeper until k allowed rows are found or the search has returned every hit, so no masked
    row is returned and the list is never short while enough allowed rows match."""
    n_allowed = int(mask.sum())
    if n_allowed == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    depth = min(n_rows, max(4 * k, k * n_rows // n_allowed))  # the expected depth for uniformly allowed rows
    while True:
        rows, scores = search(depth)
        keep = mask[rows]
        if int(keep.sum()) >= k or len(rows) < depth or depth >= n_rows:
            return rows[keep][:k], scores[keep][:k]
        depth = min(n_rows, 4 * depth)
