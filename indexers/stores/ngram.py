"""The n-gram store: queries as generator token ids, ranked by SEAL-style n-gram retrieval over the FM-index."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from indexers.errors import IndexFormatError
from indexers.ngram import NgramIndex, NgramParams, build_ngram, encode, load_ngram, ngram_text
from indexers.ngram_search import search
from indexers.ngram_segments import SegmentedNgram
from indexers.segments import SegmentPart
from indexers.stores.base import BuildEnv, LoadEnv, Ranked, StoreStats, check_mask, check_store_k
from indexers.stores.encoders import Encoders
from indexers.types import Passage

__all__ = ["NgramStore"]


class NgramStore:
    """A loaded n-gram store; queries are token-id lists from the index's n-gram tokenizer. One segment without
    deletions is its NgramIndex; several, or deletions, a SegmentedNgram whose live counts equal one FM-index
    over the live passages, so the SEAL scores are the same (indexers.ngram_segments)."""

    name: ClassVar[str] = "ngram"

    def __init__(self, index: NgramIndex | SegmentedNgram, encoders: Encoders) -> None:
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
        """Rows and live tokens (SEAL's F_total); n-gram counts come from the FM-indexes themselves."""
        return StoreStats(self.n_rows, self.index.n_tokens)

    def warm_up(self, threads: int | None = None) -> None:
        self.encoders.ngram_tokenizer()

    @classmethod
    def build(cls, passages: Sequence[Passage], directory: Path, params: NgramParams, env: BuildEnv) -> int:
        tokens = _token_ids(passages, params, env.encoders)
        build_ngram(tokens, params).save(directory)
        flat = np.fromiter((t for ts in tokens for t in ts), dtype=np.uint32, count=sum(map(len, tokens)))
        np.save(directory / _ROW_TOKENS, flat, allow_pickle=False)  # deletions need no tokenizer (~0.4 s)
        meta = json.loads((directory / "params.json").read_text(encoding="utf-8"))
        meta["row_tokens"] = len(flat)  # so a lost or damaged token file is refused on load, like the rest
        (directory / "params.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return len(passages)

    @classmethod
    def write_deleted(cls, part: SegmentPart, removed: Sequence[Passage], directory: Path, params: NgramParams,
                      encoders: Encoders) -> None:
        """An FM-index over the segment's deleted rows (all so far: their token ids are kept beside it), whose
        counts are subtracted from the segment's. The rows' token ids come from the segment itself where it kept
        them (built since they are kept), else they are tokenized again and kept beside the deletion index."""
        kept = _row_tokens(part.directory) if part.live is not None else None
        if kept is not None:
            flat, starts = kept
            rows = np.flatnonzero(~part.live).tolist()
            build_ngram([flat[starts[r] - r:starts[r + 1] - r - 1].tolist() for r in rows], params).save(directory / _FM)
            return
        tokens = _load_tokens(part.deleted) if part.deleted is not None else []
        tokens += _token_ids(removed, params, encoders)
        directory.mkdir(parents=True, exist_ok=True)
        flat = np.fromiter((t for ts in tokens for t in ts), dtype=np.int64, count=sum(map(len, tokens)))
        np.save(directory / _TOKENS, flat, allow_pickle=False)
        np.save(directory / _OFFSETS, np.cumsum([0] + [len(ts) for ts in tokens]).astype(np.int64), allow_pickle=False)
        build_ngram(tokens, params).save(directory / _FM)

    @classmethod
    def write_state(cls, before, previous, added, removed, after, directory, params, encoders) -> None:
        """Nothing: n-gram counts are summed over the segments at query time."""

    @classmethod
    def load(cls, directory: Path, env: LoadEnv) -> "NgramStore":
        return cls(_load(directory), env.encoders)

    @classmethod
    def open(cls, parts: Sequence[SegmentPart], state: Path | None, env: LoadEnv) -> "NgramStore":
        if len(parts) == 1 and parts[0].live is None:
            return cls.load(parts[0].directory, env)
        return cls(SegmentedNgram([(_load(p.directory), load_ngram(p.deleted / _FM) if p.deleted else None,
                                    p.live) for p in parts]), env.encoders)


_TOKENS, _OFFSETS, _FM, _ROW_TOKENS = "tokens.npy", "offsets.npy", "fm", "row_tokens.npy"


def _load(directory: Path) -> NgramIndex:
    """A segment's n-gram index, its kept token ids checked (header and length: no data read)."""
    index = load_ngram(directory)
    _row_tokens(directory)
    return index


def _row_tokens(directory: Path, meta: dict | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """A segment's kept token ids (flat, no separators) and its row starts in the FM text (row r holds
    flat[starts[r] - r : starts[r + 1] - r - 1]); None for a segment built before they were kept."""
    if meta is None:
        meta = json.loads((directory / "params.json").read_text(encoding="utf-8"))
    if "row_tokens" not in meta:
        return None
    try:
        flat = np.load(directory / _ROW_TOKENS, allow_pickle=False, mmap_mode="r")
        starts = np.load(directory / "doc_starts.npy", allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise IndexFormatError(f"{directory}: cannot read the kept token ids ({e}); rebuild the index") from e
    if flat.dtype != np.uint32 or flat.shape != (meta["row_tokens"],) or starts.ndim != 1 or \
            len(flat) != int(starts[-1]) - (len(starts) - 1):
        raise IndexFormatError(f"{directory / _ROW_TOKENS}: does not fit the segment's rows; rebuild the index")
    return flat, starts


def _token_ids(passages: Sequence[Passage], params: NgramParams, encoders: Encoders) -> list[list[int]]:
    """Passages as the n-gram store indexes them: generator token ids of their title and text."""
    tok = encoders.ngram_tokenizer()
    return encode(tok, [ngram_text(p.text, p.title, params.collapse_spaces) for p in passages])


def _load_tokens(directory: Path) -> list[list[int]]:
    """The deleted rows' token ids a deletion sidecar keeps."""
    try:
        flat = np.load(directory / _TOKENS, allow_pickle=False)
        off = np.load(directory / _OFFSETS, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise IndexFormatError(f"{directory}: cannot read the deleted rows' tokens ({e}); rebuild the index") from e
    if off.ndim != 1 or len(off) == 0 or off[0] != 0 or off[-1] != len(flat) or np.any(np.diff(off) < 0):
        raise IndexFormatError(f"{directory / _OFFSETS}: bad offsets; rebuild the index")
    return [flat[a:b].tolist() for a, b in zip(off[:-1].tolist(), off[1:].tolist())]
