"""SEAL-style n-gram retrieval over the FM-index store, without a trained generator (Bevilacqua et al., 2022).

Candidates are the query's own token n-grams (every n <= max_n that occurs), each weighted by SEAL's
unconditional score w = log((F_total - F) / F) (F = corpus count, F_total = corpus tokens), i.e. the rarity
term of SEAL's w(n, q) with the LM factor left out. An n-gram is dropped when a one-token-longer n-gram of
the query has the same count (same occurrences, covers more), and when F > max_count (stopwords, very common
pieces), which also bounds the locate work. A passage scores SEAL's intersective sum over the n-grams it
holds, highest weight first: w^alpha * cover, cover = 1 - beta + beta * (share of the n-gram's query
positions not covered by higher-weight n-grams in that passage), so overlapping n-grams are not counted twice.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, NamedTuple, Sequence

import numpy as np

from indexers.errors import ConfigError, positive_int
from indexers.ngram import NgramIndex
from indexers.ngram_segments import SegmentedNgram, SegmentIntervals

__all__ = ["NgramSearchParams", "NgramCandidate", "search", "query_ngrams", "locate_ngrams", "ngram_counts",
           "plan_ngrams", "score_planned"]


@dataclass(frozen=True)
class NgramSearchParams:
    """max_n: longest query n-gram; max_count: skip n-grams occurring more often; max_located: occurrence
    budget per query (rarest n-grams are located first); alpha, beta: SEAL's weight exponent and cover mix."""

    max_n: int = 8
    max_count: int = 500
    max_located: int = 50_000
    max_query_tokens: int = 256
    alpha: float = 3.0
    beta: float = 0.5

    def __post_init__(self) -> None:
        for name in ("max_n", "max_count", "max_located", "max_query_tokens"):
            v = getattr(self, name)
            positive_int(v, f"NgramSearchParams.{name}")
        if not (math.isfinite(self.alpha) and self.alpha > 0 and 0 <= self.beta <= 1):
            raise ConfigError(f"NgramSearchParams needs alpha > 0 and 0 <= beta <= 1, got {self.alpha}, {self.beta}")


class NgramCandidate(NamedTuple):
    """A query n-gram q[start:end], its live corpus count and its SA intervals (for locating its rows)."""

    start: int
    end: int
    count: int
    intervals: SegmentIntervals


def _segmented(index: NgramIndex | SegmentedNgram) -> SegmentedNgram:
    return SegmentedNgram([(index, None, None)]) if isinstance(index, NgramIndex) else index


def _occurring(index: SegmentedNgram, q: Sequence[int], params: NgramSearchParams
               ) -> dict[tuple[int, int], SegmentIntervals]:
    """Every query n-gram q[i:j] (j - i <= max_n) with live occurrences -> its intervals."""
    root = index.interval(())
    found: dict[tuple[int, int], SegmentIntervals] = {}
    for i in range(len(q)):
        ivs = root
        for j in range(i, min(len(q), i + params.max_n)):
            ivs = index.extend(ivs, q[j])
            if ivs.count == 0:
                break
            found[(i, j + 1)] = ivs
    return found


def _query(query_token_ids: Sequence[int], params: NgramSearchParams) -> list[int]:
    if isinstance(query_token_ids, (str, bytes)):
        raise ConfigError("pass the query's token ids (indexers.ngram.encode), not a string")
    return [int(t) for t in query_token_ids][: params.max_query_tokens]


def _maximal(counts: Mapping[tuple[int, int], int], params: NgramSearchParams) -> list[tuple[int, int, int]]:
    """(start, end, count) of the candidates: count <= max_count and no one-token-longer n-gram as frequent."""
    out = []
    for (i, j), c in counts.items():
        if c > params.max_count:
            continue
        right, left = counts.get((i, j + 1)), counts.get((i - 1, j))
        if right == c or left == c:
            continue  # a longer n-gram has exactly these occurrences
        out.append((i, j, c))
    return out


def query_ngrams(index: NgramIndex | SegmentedNgram, query_token_ids: Sequence[int],
                 params: NgramSearchParams = NgramSearchParams()) -> list[NgramCandidate]:
    """Scored candidates of the query, maximal as described in the module doc (counts over live rows)."""
    index = _segmented(index)
    found = _occurring(index, _query(query_token_ids, params), params)
    return [NgramCandidate(i, j, c, found[(i, j)]) for i, j, c in
            _maximal({g: ivs.count for g, ivs in found.items()}, params)]


def locate_ngrams(index: NgramIndex | SegmentedNgram, query_token_ids: Sequence[int],
                  params: NgramSearchParams = NgramSearchParams()) -> dict[tuple[int, int], SegmentIntervals]:
    """(start, end) -> SA intervals (with the live count) of every query n-gram occurring in `index`: the
    backward searches both ngram_counts and score_planned need, so a caller can do them once."""
    return _occurring(_segmented(index), _query(query_token_ids, params), params)


def ngram_counts(index: NgramIndex | SegmentedNgram, query_token_ids: Sequence[int],
                 params: NgramSearchParams = NgramSearchParams(),
                 found: Mapping[tuple[int, int], SegmentIntervals] | None = None) -> dict[tuple[int, int], int]:
    """(start, end) -> live count of every query n-gram occurring in `index`; the counts of disjoint indexes
    (shards) add up to those of one index over all of them. `found`: locate_ngrams' result, if at hand."""
    if found is None:
        found = locate_ngrams(index, query_token_ids, params)
    return {g: ivs.count for g, ivs in found.items()}


def plan_ngrams(counts: Mapping[tuple[int, int], int], n_tokens: int,
                params: NgramSearchParams = NgramSearchParams()) -> list[tuple[int, int, float]]:
    """The n-grams a search locates, (start, end, SEAL weight), from collection-wide counts and live tokens:
    rarest first within the located budget, positive weights only (the module doc)."""
    total = max(2, n_tokens)
    cands = _maximal(counts, params)
    # rarest first (then longer, then leftmost): the located budget goes to the most telling n-grams
    cands.sort(key=lambda g: (g[2], -(g[1] - g[0]), g[0]))
    budget = params.max_located
    out = []
    for i, j, c in cands:
        if c > budget:
            continue
        budget -= c
        w = math.log(max(total - c, 1) / c)
        if w > 0:
            out.append((i, j, w))
    return out


def score_planned(index: NgramIndex | SegmentedNgram, query_token_ids: Sequence[int],
                  plan: Sequence[tuple[int, int, float]], k: int, params: NgramSearchParams = NgramSearchParams(),
                  mask: np.ndarray | None = None,
                  found: Mapping[tuple[int, int], SegmentIntervals] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows of `index` scored on the planned n-grams (plan_ngrams), as `search` ranks them; over shards
    planned from summed counts, each shard's rows score exactly as in one index over all of them. `found`:
    locate_ngrams' result for this query on this index, if at hand (saves the backward searches)."""
    index = _segmented(index)
    if found is None:
        found = locate_ngrams(index, query_token_ids, params) if plan else {}
    return _score(index, plan, found, k, params, mask)


def _score(index: SegmentedNgram, plan: Sequence[tuple[int, int, float]],
           found: Mapping[tuple[int, int], SegmentIntervals], k: int, params: NgramSearchParams,
           mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    per_doc: dict[int, list[tuple[float, int, int]]] = {}
    for i, j, w in plan:
        ivs = found.get((i, j))
        if ivs is None:
            continue
        rows = index.interval_rows(ivs, j - i)
        for r in (rows if mask is None else rows[mask[rows]]).tolist():
            per_doc.setdefault(r, []).append((w, i, j))
    if not per_doc:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    alpha, beta = params.alpha, params.beta
    rows_out = np.fromiter(per_doc, dtype=np.int64, count=len(per_doc))
    scores = np.empty(len(rows_out), dtype=np.float64)
    for x, r in enumerate(rows_out.tolist()):
        grams = sorted(per_doc[r], key=lambda g: (-g[0], g[1], g[2]))
        covered, s = 0, 0.0
        for w, i, j in grams:
            span = ((1 << (j - i)) - 1) << i
            new = bin(span & ~covered).count("1")
            s += w ** alpha * (1 - beta + beta * new / (j - i))
            covered |= span
        scores[x] = s
    order = np.lexsort((rows_out, -scores))[:k]
    return rows_out[order], scores[order]


def search(index: NgramIndex | SegmentedNgram, query_token_ids: Sequence[int], k: int,
           params: NgramSearchParams = NgramSearchParams(), mask: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Top-k passages -> (rows [k'] int64, scores [k'] float64), order (score desc, row asc); k' <= k.

    `mask` [n_docs] bool keeps only rows where it is True; it drops rows after scoring, so scores and the
    located budget are those of the unmasked search and the masked top-k is exact. Over a SegmentedNgram,
    rows are global and the result is that of one index built over the live rows, mapped back."""
    positive_int(k, "k")
    index = _segmented(index)
    found = _occurring(index, _query(query_token_ids, params), params)
    plan = plan_ngrams({g: ivs.count for g, ivs in found.items()}, index.n_tokens, params)
    return _score(index, plan, found, k, params, mask)
