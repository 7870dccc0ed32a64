"""Segments: the immutable pieces an index (format 3) is made of, Lucene-style.

A segment folder `seg-GGGGGG-KKK/` (written by generation G) holds its row maps -- `ids.npy` (row -> passage
id), `passage_hashes.npy` (row -> content hash), `id_order.npy` (rows sorted by id, for O(log n) lookups) --
and one sub-folder per store. It is never rewritten: deleting rows adds a deletion folder `del-GGGGGG/` holding
`rows.npy` (every deleted row so far, sorted) and each store's deletion sidecar, and the manifest names the
segment's current deletion folder. Rows of all segments, in manifest order, form the index's global rows.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexers.errors import CorpusError, IndexFormatError
from indexers.ingest import passage_hash
from indexers.types import Passage

__all__ = ["IDS", "HASHES", "SegmentPart", "Segment", "write_row_maps", "load_segment", "live_rows_of",
           "write_deleted_rows", "segment_name"]

IDS = "ids.npy"
HASHES = "passage_hashes.npy"
_ORDER = "id_order.npy"
_ROWS = "rows.npy"


def segment_name(generation: int, k: int) -> str:
    """The folder name of the k-th segment written by `generation`."""
    return f"seg-{generation:06d}-{k:03d}"


@dataclass(frozen=True)
class SegmentPart:
    """One segment as a store sees it: its store folder, its store deletion sidecar (None without deletions)
    and its live rows (bool [n_rows]; None = all live)."""

    directory: Path
    deleted: Path | None
    live: np.ndarray | None
    n_rows: int


@dataclass
class Segment:
    """A loaded segment's row maps and deletions (the index-level view)."""

    name: str
    directory: Path
    ids: np.ndarray  # [n_rows] str
    hashes: np.ndarray  # [n_rows] str
    order: np.ndarray  # [n_rows] int64: rows sorted by id
    deleted_rows: np.ndarray  # [n_deleted] int64, sorted
    deleted_name: str = ""  # the current deletion folder ("" for none)
    _keys: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_rows(self) -> int:
        return len(self.ids)

    @property
    def live(self) -> np.ndarray | None:
        """bool [n_rows], None when nothing is deleted."""
        if len(self.deleted_rows) == 0:
            return None
        m = np.ones(self.n_rows, dtype=bool)
        m[self.deleted_rows] = False
        return m

    def part(self, store: str) -> SegmentPart:
        deleted = self.directory / self.deleted_name / store if self.deleted_name else None
        return SegmentPart(self.directory / store, deleted, self.live, self.n_rows)

    def _live_row_per_id(self, ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """[m] int64: the live row holding each passage id, -1 where none (O(log n) each, vectorised)."""
        want = np.asarray(ids, dtype=str)  # not cast to the keys' width: no truncated id may match
        if not len(want) or not self.n_rows:
            return np.full(len(want), -1, np.int64)
        if self._keys is None:
            self._keys = self.ids[self.order]  # ids in sorted order
        keys = self._keys
        at = np.searchsorted(keys, want)
        hit = at < len(keys)
        hit[hit] = keys[at[hit]] == want[hit]
        rows = np.where(hit, self.order[np.minimum(at, len(keys) - 1)], -1)
        if len(self.deleted_rows):
            rows[np.isin(rows, self.deleted_rows)] = -1
        return rows

    def live_rows_of(self, ids: np.ndarray) -> np.ndarray:
        """The live rows holding any of the passage ids `ids` [m] str, ascending (a filter's matching
        passages become a row mask in O(m log n))."""
        rows = self._live_row_per_id(ids)
        return np.sort(rows[rows >= 0])

    def find(self, ids: Sequence[str]) -> dict[str, int]:
        """passage id -> live row, for the ids this segment holds live."""
        return {pid: r for pid, r in zip(ids, self._live_row_per_id(ids).tolist()) if r >= 0}


def write_row_maps(directory: Path, passages: Sequence[Passage], hashes: Sequence[str] | None = None) -> np.ndarray:
    """Save a new segment's ids, content hashes and id order into `directory`; returns the hashes."""
    directory.mkdir(parents=True, exist_ok=True)
    ids = np.array([p.id for p in passages])
    h = np.array(list(hashes) if hashes is not None else [passage_hash(p) for p in passages])
    np.save(directory / IDS, ids, allow_pickle=False)
    np.save(directory / HASHES, h, allow_pickle=False)
    np.save(directory / _ORDER, np.argsort(ids, kind="stable").astype(np.int64), allow_pickle=False)
    saved = np.load(directory / IDS, allow_pickle=False)
    if saved.tolist() != [p.id for p in passages]:  # the row -> id map every store relies on must round-trip
        bad = next(p.id for p, s in zip(passages, saved.tolist()) if p.id != s)
        raise CorpusError(f"passage id {bad!r} does not survive being saved (control characters?): rename it")
    return h


def _load(path: Path, n: int | None, what: str) -> np.ndarray:
    try:
        a = np.load(path, allow_pickle=False, mmap_mode="r")  # pages read when used: opens stay cheap
    except (OSError, ValueError) as e:
        raise IndexFormatError(f"{path}: cannot read ({e}); rebuild the index") from e
    if a.ndim != 1 or (n is not None and len(a) != n):
        raise IndexFormatError(f"{path}: expected {what} of {n} rows, found shape {a.shape}; rebuild the index")
    return a


def load_segment(directory: Path, name: str, n_rows: int, deleted_name: str = "", n_deleted: int = 0,
                 legacy: bool = False) -> Segment:
    """Load a segment's row maps (a format-1/2 data folder with `legacy`: no id order, sorted here)."""
    ids = _load(directory / IDS, n_rows, "passage ids")
    hashes = _load(directory / HASHES, n_rows, "passage hashes")
    if legacy:
        order = np.argsort(ids, kind="stable").astype(np.int64)
    else:
        order = _load(directory / _ORDER, n_rows, "an id order")
        if order.dtype != np.int64 or (n_rows and (order.min() < 0 or order.max() >= n_rows)):
            raise IndexFormatError(f"{directory / _ORDER}: bad row numbers; rebuild the index")
    rows = np.empty(0, np.int64)
    if deleted_name:
        rows = _load(directory / deleted_name / _ROWS, n_deleted, "deleted rows")
        if rows.dtype != np.int64 or (n_deleted and (rows.min() < 0 or rows.max() >= n_rows
                                                      or np.any(np.diff(rows) <= 0))):
            raise IndexFormatError(f"{directory / deleted_name / _ROWS}: bad row numbers; rebuild the index")
    return Segment(name, directory, ids, hashes, order, rows, deleted_name)


def live_rows_of(seg: Segment) -> np.ndarray:
    """The live rows of `seg`, ascending."""
    if not len(seg.deleted_rows):
        return np.arange(seg.n_rows, dtype=np.int64)
    return np.setdiff1d(np.arange(seg.n_rows, dtype=np.int64), seg.deleted_rows, assume_unique=True)


def write_deleted_rows(directory: Path, rows: np.ndarray) -> None:
    """Save a deletion folder's `rows.npy` (every deleted row of the segment, sorted, unique)."""
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / _ROWS, np.unique(np.asarray(rows, dtype=np.int64)), allow_pickle=False)
