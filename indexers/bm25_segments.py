"""Exact BM25 over immutable segments with per-segment deletion marks (as Lucene).

A search rescores each posting at query time from its tf, its doc length and collection-wide live statistics
(rows, avgdl, df, Okapi's mean idf) with indexers.bm25's own idf and impact functions, adding query terms in
query order (duplicates twice), so scores and top-k are bit-equal to `build_bm25` over the live rows alone, in
segment order. Global row = the segment's offset (earlier segments' rows, deleted ones included) + local row.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from indexers.bm25 import BM25Index, BM25Params, floor_idf, length_norms, mean_idf, posting_impacts, raw_idf
from indexers.errors import ConfigError, CorpusError, IndexFormatError, positive_int
from indexers.index_dir import load_arrays

__all__ = ["BM25Deleted", "BM25Global", "SegmentedBM25", "global_stats", "live_dfs", "update_global"]

_FORMAT = 1
_FIX = "rebuild the index: `adarag index CORPUS --out INDEX --rebuild`"
Segment = tuple[BM25Index, "BM25Deleted | None"]


@dataclass(frozen=True)
class BM25Deleted:
    """One segment's deleted rows: term -> deleted rows holding it, how many rows, how many tokens."""

    df: Mapping[str, int]
    n_rows: int
    total_length: int

    @classmethod
    def from_tokens(cls, token_lists: Sequence[Sequence[str]]) -> "BM25Deleted":
        """Statistics of the deleted rows from their analyzer token lists."""
        df: Counter[str] = Counter()
        total = 0
        for i, doc in enumerate(token_lists):
            if isinstance(doc, str):
                raise CorpusError(f"deleted row {i} is a str, not a token list: tokenize it first")
            total += len(doc)
            df.update(set(doc))
        return cls(dict(df), len(token_lists), total)

    def merge(self, later: "BM25Deleted") -> "BM25Deleted":
        """These deletions plus a later batch of (other) rows of the same segment."""
        df = dict(self.df)
        for t, c in later.df.items():
            df[t] = df.get(t, 0) + c
        return BM25Deleted(df, self.n_rows + later.n_rows, self.total_length + later.total_length)

    def save(self, directory: Path) -> list[str]:
        """Write deleted.json, terms.json and df.npy into `directory`; returns the file names."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        terms = list(self.df)
        np.save(directory / "df.npy", np.array([self.df[t] for t in terms], dtype=np.int64), allow_pickle=False)
        (directory / "terms.json").write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")
        meta = {"format": "adarag-bm25-deleted", "version": _FORMAT, "n_rows": self.n_rows,
                "total_length": self.total_length, "n_terms": len(terms)}
        (directory / "deleted.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return ["df.npy", "terms.json", "deleted.json"]

    @classmethod
    def load(cls, directory: Path) -> "BM25Deleted":
        """Read `save`'s files, checking that every count is possible."""
        directory = Path(directory)
        meta = _read_meta(directory / "deleted.json", "adarag-bm25-deleted", ("n_rows", "total_length", "n_terms"))
        n_rows, n_terms = meta["n_rows"], meta["n_terms"]
        terms = _read_json(directory / "terms.json")
        if not isinstance(terms, list) or len(terms) != n_terms or not all(isinstance(t, str) for t in terms) \
                or len(set(terms)) != n_terms:
            raise IndexFormatError(f"{directory / 'terms.json'}: expected {n_terms} distinct strings; {_FIX}")
        df = np.asarray(load_arrays(directory, {"df": (np.int64, (n_terms,))})["df"])
        if n_terms and (int(df.min()) < 1 or int(df.max()) > n_rows):
            raise IndexFormatError(f"{directory / 'df.npy'}: counts outside [1, {n_rows}]; {_FIX}")
        return cls(dict(zip(terms, df.tolist())), n_rows, meta["total_length"])


@dataclass(frozen=True)
class BM25Global:
    """Collection-wide live statistics; df_hist maps a live df to how many terms have it (df 0 left out)."""

    n_rows: int
    total_length: int
    df_hist: Mapping[int, int]

    def mean_idf(self, params: BM25Params) -> float:
        """Okapi's mean idf over all live terms, correctly rounded (so independent of term order)."""
        if not self.df_hist:
            return 0.0
        dfs = np.array(sorted(self.df_hist), dtype=np.int64)
        return mean_idf(raw_idf(dfs, self.n_rows, params), np.array([self.df_hist[d] for d in dfs.tolist()]))

    def idf(self, df: int, params: BM25Params) -> float:
        """A term's idf at live df `df`, floored as `build_bm25` floors it."""
        return float(self.idfs(np.array([df], dtype=np.int64), params, self.mean_idf(params))[0])

    def idfs(self, df: np.ndarray, params: BM25Params, mean: float) -> np.ndarray:
        """idf [m] float64 of live dfs [m] int64, given `mean_idf(params)` (computed once by the caller)."""
        return floor_idf(raw_idf(df, self.n_rows, params), mean, params)

    def save(self, path: Path) -> None:
        """Write the statistics as one JSON file."""
        meta = {"format": "adarag-bm25-global", "version": _FORMAT, "n_rows": self.n_rows,
                "total_length": self.total_length, "df_hist": sorted(self.df_hist.items())}
        Path(path).write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "BM25Global":
        meta = _read_meta(Path(path), "adarag-bm25-global", ("n_rows", "total_length"))
        hist = meta.get("df_hist")
        if not isinstance(hist, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(_is_count(x) for x in p) and p[0] >= 1 and p[1] >= 1
                and p[0] <= meta["n_rows"] for p in hist) or len({p[0] for p in hist}) != len(hist):
            raise IndexFormatError(f"{path}: df_hist must be distinct [df, count] pairs, 1 <= df <= n_rows; {_FIX}")
        return cls(meta["n_rows"], meta["total_length"], dict(map(tuple, hist)))


def _is_count(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexFormatError(f"{path}: cannot read ({e}); {_FIX}") from e


def _read_meta(path: Path, fmt: str, counts: tuple[str, ...]) -> dict:
    meta = _read_json(path)
    if not isinstance(meta, dict) or meta.get("format") != fmt or meta.get("version") != _FORMAT:
        raise IndexFormatError(f"{path}: not an {fmt} v{_FORMAT} file (got {str(meta)[:80]}); {_FIX}")
    bad = [c for c in counts if not _is_count(meta.get(c))]
    if bad:
        raise IndexFormatError(f"{path}: {bad} must be non-negative ints; {_FIX}")
    return meta


def _seg_df(index: BM25Index, term: str) -> int:
    i = index.vocab.get(term)
    return 0 if i is None else int(index.indptr[i + 1] - index.indptr[i])


def _live_df(segments: Sequence[Segment], term: str) -> int:
    return sum(_seg_df(ix, term) - (d.df.get(term, 0) if d is not None else 0) for ix, d in segments)


def live_dfs(segments: Sequence[Segment]) -> tuple[Counter[str], int, int]:
    """(term -> live rows holding it, live rows, live tokens) of (index, deletions) segments; the tables of
    disjoint shards add up to the collection's."""
    df: Counter[str] = Counter()
    n_rows = total = 0
    for index, deleted in segments:
        ids = np.fromiter(index.vocab.values(), dtype=np.int64, count=len(index.vocab))
        df.update(dict(zip(index.vocab, np.diff(index.indptr)[ids].tolist())))
        n_rows += index.n_docs
        total += int(np.sum(index.doc_lens))
        if deleted is not None:
            df.subtract(deleted.df)
            n_rows -= deleted.n_rows
            total -= deleted.total_length
    if min(df.values(), default=0) < 0 or n_rows < 0 or total < 0:
        raise ConfigError("deletions exceed their segments' rows: each BM25Deleted must describe its own segment")
    return df, n_rows, total


def global_stats(segments: Sequence[Segment]) -> BM25Global:
    """Live statistics of (index, deletions) segments, from scratch."""
    df, n_rows, total = live_dfs(segments)
    return BM25Global(n_rows, total, dict(Counter(v for v in df.values() if v > 0)))


def update_global(old: BM25Global, segments_before: Sequence[Segment], new_segment: BM25Index | None,
                  newly_deleted: Sequence[BM25Deleted | None]) -> BM25Global:
    """`old` (the stats of segments_before) after appending new_segment and deleting newly_deleted[i] in segment i.

    Touches only the new segment's terms and the newly deleted rows' terms."""
    if len(newly_deleted) != len(segments_before):
        raise ConfigError(f"newly_deleted needs one entry (or None) per earlier segment: {len(segments_before)}, "
                          f"got {len(newly_deleted)}")
    change: Counter[str] = Counter()
    n_rows, total = old.n_rows, old.total_length
    if new_segment is not None:
        ids = np.fromiter(new_segment.vocab.values(), dtype=np.int64, count=len(new_segment.vocab))
        change.update(dict(zip(new_segment.vocab, np.diff(new_segment.indptr)[ids].tolist())))
        n_rows += new_segment.n_docs
        total += int(np.sum(new_segment.doc_lens))
    for deleted in newly_deleted:
        if deleted is not None:
            change.subtract(deleted.df)
            n_rows -= deleted.n_rows
            total -= deleted.total_length
    hist = Counter(old.df_hist)
    for term, delta in change.items():
        before = _live_df(segments_before, term)
        after = before + delta
        if after < 0:
            raise ConfigError(f"term {term!r} would have live df {after}: deletions must be of live rows")
        if before != after:
            hist[before] -= before > 0
            hist[after] += after > 0
    if n_rows < 0 or total < 0 or min(hist.values(), default=0) < 0:
        raise ConfigError("the update does not fit `old`: pass the stats of exactly segments_before")
    return BM25Global(n_rows, total, {d: c for d, c in hist.items() if c > 0})


class SegmentedBM25:
    """Loaded segments searched as one exact BM25 index over their live rows.

    With `shard=True` the segments are one shard of a larger collection that `stats` describes: searches
    then take each query term's collection-wide df (`dfs=`), so a shard scores its rows exactly as one index
    over the whole collection would (no shard-local idf, unlike Elasticsearch's default query_then_fetch)."""

    def __init__(self, segments: Sequence[tuple[BM25Index, BM25Deleted | None, np.ndarray | None]],
                 stats: BM25Global, params: BM25Params = BM25Params(), *, shard: bool = False) -> None:
        self.params, self.stats, self.shard = params, stats, shard
        self.segments = [ix for ix, _, _ in segments]
        self._pairs = [(ix, deleted) for ix, deleted, _ in segments]
        self.offsets = np.zeros(len(segments) + 1, dtype=np.int64)
        np.cumsum([ix.n_docs for ix in self.segments], out=self.offsets[1:])
        n = int(self.offsets[-1])
        self._live: np.ndarray | None = None
        live_total = 0
        for s, (ix, deleted, live) in enumerate(segments):
            if ix.params != params:
                raise ConfigError(f"segment {s} was built with {ix.params}, this search uses {params}: rebuild it")
            n_del = 0 if deleted is None else deleted.n_rows
            if live is not None:
                live = np.asarray(live)
                if live.dtype != np.bool_ or live.shape != (ix.n_docs,):
                    raise ConfigError(f"segment {s}'s live mask must be bool [{ix.n_docs}], got {live.dtype} "
                                      f"{live.shape}")
                if self._live is None:
                    self._live = np.ones(n, dtype=bool)
                self._live[self.offsets[s]:self.offsets[s + 1]] = live
            if (ix.n_docs - int(np.count_nonzero(live)) if live is not None else 0) != n_del:
                raise ConfigError(f"segment {s}: its live mask and its BM25Deleted disagree on the deleted rows")
            if ix.tfs is None and (len(segments) > 1 or n_del):
                raise IndexFormatError(f"bm25 segment {s} is format 1 (no tfs.npy): it can only be searched alone "
                                       f"and without deletions; {_FIX}")
            live_total += int(np.sum(ix.doc_lens) if live is None else np.sum(ix.doc_lens[live]))
        if self._live is not None and self._live.all():
            self._live = None
        n_live = n if self._live is None else int(np.count_nonzero(self._live))
        if (stats.n_rows, stats.total_length) != (n_live, live_total) and not (
                shard and stats.n_rows >= n_live and stats.total_length >= live_total):
            raise ConfigError(f"stats say {stats.n_rows} live rows / {stats.total_length} tokens, the segments hold "
                              f"{n_live} / {live_total}: recompute them with global_stats(segments)")
        self._mean = stats.mean_idf(params) if params.variant == "okapi" else 0.0
        avgdl = stats.total_length / stats.n_rows if stats.total_length else 1.0  # 0 tokens: nothing ever matches
        self._norms = [length_norms(ix.doc_lens, avgdl, params) for ix in self.segments]

    @property
    def n_rows(self) -> int:
        """All rows, deleted ones included."""
        return int(self.offsets[-1])

    def df(self, term: str) -> int:
        """Live rows holding `term`, over all segments."""
        return _live_df(self._pairs, term)

    def search(self, query_tokens: Sequence[str], k: int, mask: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k live rows passing `mask` (bool [n_rows]) -> (rows [k'] int64, scores [k'] float64), k' <= k."""
        return self.search_batch([query_tokens], k, mask)[0]

    def search_batch(self, queries: Sequence[Sequence[str]], k: int, mask: np.ndarray | None = None,
                     dfs: Sequence[Mapping[str, int]] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """`search` for each query (one shared mask); `dfs[i]` maps query i's terms to their collection-wide
        live df (needed, and only allowed, for a shard)."""
        if self.shard != (dfs is not None) or (dfs is not None and len(dfs) != len(queries)):
            raise ConfigError("a shard's search needs one collection-wide df table per query (dfs=), and only a "
                              "shard takes one")
        positive_int(k, "k")
        allowed = self._live
        if mask is not None:
            m = np.asarray(mask)
            if m.dtype != np.bool_ or m.shape != (self.n_rows,):
                raise ConfigError(f"mask must be a bool array of shape ({self.n_rows},), got {m.dtype} {m.shape}")
            allowed = m if allowed is None else m & allowed
        return [self._search(q, int(k), allowed, None if dfs is None else dfs[i]) for i, q in enumerate(queries)]

    def _search(self, query: Sequence[str], k: int, allowed: np.ndarray | None, collection: Mapping[str, int] | None
                ) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(query, str):
            raise ConfigError("query_tokens must be a list of analyzed tokens, not a str: tokenize it first")
        dfs = {t: self.df(t) if collection is None else int(collection.get(t, 0)) for t in dict.fromkeys(query)}
        live = [t for t in dfs if dfs[t] > 0]  # a term no live row holds adds nothing, as in a fresh build
        if not live:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        idf = dict(zip(live, self.stats.idfs(np.array([dfs[t] for t in live], dtype=np.int64), self.params,
                                             self._mean).tolist()))
        acc = np.zeros(self.n_rows, dtype=np.float64)
        hit = np.zeros(self.n_rows, dtype=bool)
        cache: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {}
        for t in query:  # query order, duplicates twice: the same additions as the single-index kernel
            if t not in idf:
                continue
            if t not in cache:
                cache[t] = self._postings(t, idf[t])
            for s, rows, imp in cache[t]:
                view = acc[self.offsets[s]:self.offsets[s + 1]]
                view[rows] += imp  # rows are unique within a term's postings, so this is a plain add
                hit[self.offsets[s]:self.offsets[s + 1]][rows] = True
        if allowed is not None:
            hit &= allowed
        cand = np.flatnonzero(hit)
        scores = acc[cand]
        if len(cand) > k:
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            keep = scores >= kth
            cand, scores = cand[keep], scores[keep]
        order = np.lexsort((cand, -scores))[:k]
        return cand[order].astype(np.int64), scores[order]

    def _postings(self, term: str, idf: float) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """(segment, local rows [m] int32, impacts [m] float64) of `term` in every segment holding it."""
        out = []
        for s, ix in enumerate(self.segments):
            i = ix.vocab.get(term)
            if i is None:
                continue
            a, e = int(ix.indptr[i]), int(ix.indptr[i + 1])
            rows = ix.indices[a:e]
            if ix.tfs is None:  # format 1, alone and without deletions: its baked impacts are the global ones
                out.append((s, rows, ix.impacts[a:e]))
            else:
                out.append((s, rows, posting_impacts(idf, ix.tfs[a:e], self._norms[s][rows], self.params) + 0.0))
        return out
