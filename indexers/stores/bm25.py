"""The BM25 store: analyzer tokens searched exactly over indexers.bm25's postings, one segment or many."""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from indexers.bm25 import BM25Index, BM25Params, build_bm25, load_bm25
from indexers.bm25_segments import BM25Deleted, BM25Global, SegmentedBM25, global_stats, update_global
from indexers.errors import ConfigError, IndexFormatError
from indexers.segments import SegmentPart
from indexers.stores.base import BuildEnv, LoadEnv, Ranked, StoreStats, check_mask, check_store_k, masked_topk
from indexers.stores.encoders import Encoders
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


class _LiveDocFreqs(Mapping[str, int]):
    """term -> live rows holding it over every segment (SegmentedBM25.df)."""

    def __init__(self, index: SegmentedBM25) -> None:
        self._index = index

    def __getitem__(self, term: str) -> int:
        n = self._index.df(term)
        if n == 0:
            raise KeyError(term)
        return n

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for seg in self._index.segments:
            for t in seg.vocab:
                if t not in seen:
                    seen.add(t)
                    if self._index.df(t):
                        yield t

    def __len__(self) -> int:
        return sum(1 for _ in self)


class BM25Store:
    """A loaded BM25 store; queries are analyzer token lists. One segment without deletions is searched by the
    impact kernel over its postings; segments with deletions by SegmentedBM25 (indexers.bm25_segments),
    which rescores from tf with collection-wide live statistics: the same scores, bit for bit."""

    name: ClassVar[str] = "bm25"

    def __init__(self, index: BM25Index | SegmentedBM25) -> None:
        self.index = index

    @property
    def n_rows(self) -> int:
        return self.index.n_rows if isinstance(self.index, SegmentedBM25) else self.index.n_docs

    def prepare(self, queries: Sequence[str], threads: int | None = None) -> list[list[str]]:
        return [tokenize(q) for q in queries]

    def search_batch(self, queries: Sequence[Sequence[str]], k: int, mask: np.ndarray | None = None) -> list[Ranked]:
        k, mask = check_store_k(k), check_mask(mask, self.n_rows)
        if isinstance(self.index, SegmentedBM25):
            return self.index.search_batch(queries, k, mask)
        if mask is None:
            return self.index.search_batch(queries, k)
        return [masked_topk(lambda depth, q=q: self.index.search(q, depth), k, mask, self.n_rows) for q in queries]

    def stats(self) -> StoreStats:
        if isinstance(self.index, SegmentedBM25):
            st = self.index.stats
            return StoreStats(st.n_rows, st.total_length, _LiveDocFreqs(self.index))
        return StoreStats(self.n_rows, int(self.index.doc_lens.sum()), _DocFreqs(self.index))

    def warm_up(self, threads: int | None = None) -> None:
        """Nothing to load: the analyzer is pure Python."""

    @classmethod
    def build(cls, passages: Sequence[Passage], directory: Path, params: BM25Params, env: BuildEnv) -> int:
        it = passages
        if env.progress:
            from tqdm.auto import tqdm

            it = tqdm(passages, desc="bm25: tokenizing", unit="psg", leave=False)
        build_bm25([_tokens(p) for p in it], params).save(directory)
        return len(passages)

    @classmethod
    def write_deleted(cls, part: SegmentPart, removed: Sequence[Passage], directory: Path, params: BM25Params,
                      encoders: Encoders) -> None:
        """The deleted rows' statistics (BM25Deleted), cumulative over the segment's deletions."""
        new = BM25Deleted.from_tokens([_tokens(p) for p in removed])
        (BM25Deleted.load(part.deleted).merge(new) if part.deleted is not None else new).save(directory)

    @classmethod
    def write_state(cls, before: Sequence[SegmentPart] | None, previous: Path | None, added: Sequence[Passage],
                    removed: Sequence[Sequence[Passage]], after: Sequence[SegmentPart], directory: Path,
                    params: BM25Params, encoders: Encoders) -> None:
        """The collection-wide live statistics (BM25Global): updated from the previous generation's by the
        terms this write touched, or computed from every segment when there is none."""
        if before is None or previous is None:
            stats = global_stats([(load_bm25(p.directory), _deleted(p)) for p in after])
        else:
            segs = [(load_bm25(p.directory), _deleted(p)) for p in before]
            new = build_bm25([_tokens(p) for p in added], params) if added else None
            gone = [BM25Deleted.from_tokens([_tokens(p) for p in r]) if r else None for r in removed]
            stats = update_global(BM25Global.load(previous / _GLOBAL), segs, new, gone)
        directory.mkdir(parents=True, exist_ok=True)
        stats.save(directory / _GLOBAL)

    @classmethod
    def load(cls, directory: Path, env: LoadEnv) -> "BM25Store":
        _check_analyzer(env)
        return cls(load_bm25(directory))

    @classmethod
    def open(cls, parts: Sequence[SegmentPart], state: Path | None, env: LoadEnv) -> "BM25Store":
        _check_analyzer(env)
        if len(parts) == 1 and parts[0].live is None:
            return cls.load(parts[0].directory, env)
        segs = [(load_bm25(p.directory), _deleted(p), p.live) for p in parts]
        stats = BM25Global.load(state / _GLOBAL) if state is not None and (state / _GLOBAL).is_file() else \
            global_stats([(ix, d) for ix, d, _ in segs])
        params = segs[0][0].params
        try:
            return cls(SegmentedBM25(segs, stats, params))
        except ConfigError as e:  # statistics that do not fit the segments: a corrupt or foreign state file
            raise IndexFormatError(f"the bm25 store of index {env.root} is inconsistent ({e}); rebuild it with "
                                   f"`adarag index CORPUS --out {env.root} --rebuild`") from None


_GLOBAL = "global.json"


def _check_analyzer(env: LoadEnv) -> None:
    analyzer = env.recorded.get("analyzer")
    if analyzer != DEFAULT_ANALYZER.name:
        raise IndexFormatError(
            f"index {env.root} was tokenized with analyzer {analyzer!r}, this adarag uses "
            f"{DEFAULT_ANALYZER.name!r}: rebuild it with `adarag index CORPUS --out {env.root} --rebuild`")


def _tokens(p: Passage) -> list[str]:
    """A passage as BM25 indexes it: its title and text, analyzed."""
    return tokenize(f"{p.title} {p.text}")


def _deleted(part: SegmentPart) -> BM25Deleted | None:
    return BM25Deleted.load(part.deleted) if part.deleted is not None else None
