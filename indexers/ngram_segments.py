"""The n-gram store over immutable segments with deleted rows: counts as one NgramIndex over the live rows.

Each segment is an NgramIndex plus, once rows of it are deleted, a small NgramIndex over the deleted rows'
token lists and a live-row mask. No n-gram spans two passages, so a pattern's live count in a segment is
count(segment) - count(deleted); sums over segments equal the counts of `build_ngram` over the live passages
in segment order, which makes SEAL weights, budgets and `max_count` cuts identical. Rows are global:
segment offset (earlier segments' rows, deleted ones included) + local row.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from indexers.errors import ConfigError
from indexers.ngram import SEP, NgramIndex, NgramMatch, matchable_suffix
from kernels import fm_index as _fm

__all__ = ["Segment", "SegmentIntervals", "SegmentedNgram"]

Segment = tuple[NgramIndex, "NgramIndex | None", "np.ndarray | None"]  # (segment, deleted rows' index, live mask)
_EMPTY = np.empty(0, np.int64)


class SegmentIntervals(NamedTuple):
    """An n-gram's SA intervals: `parts` (segment, sp, ep, deleted sp, deleted ep) of the segments where it
    has live occurrences, and `count`, its live occurrences in all of them."""

    count: int
    parts: tuple[tuple[int, int, int, int, int], ...]


class SegmentedNgram:
    """NgramIndex's query API over segments with deletions; `n_docs` counts deleted rows so masks align."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        if len(segments) == 0:
            raise ConfigError("SegmentedNgram needs at least one segment")
        self.segments = [_checked(i, *s) for i, s in enumerate(segments)]
        first = self.segments[0][0].params
        for i, (seg, dl, _) in enumerate(self.segments):
            for ix in (seg, dl):
                if ix is not None and (ix.params.tokenizer, ix.params.collapse_spaces) != (
                        first.tokenizer, first.collapse_spaces):
                    raise ConfigError(f"segment {i} was tokenized as {ix.params}, segment 0 as {first}: "
                                      "rebuild it with the index's n-gram params")
        sizes = np.array([seg.n_docs for seg, _, _ in self.segments], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)  # [n_segments + 1]
        self._root = self._make_root()

    @property
    def n_docs(self) -> int:
        """All rows, deleted ones included (the length of a row mask)."""
        return int(self.offsets[-1])

    @property
    def n_live(self) -> int:
        return int(sum(seg.n_docs - (0 if dl is None else dl.n_docs) for seg, dl, _ in self.segments))

    @property
    def n_tokens(self) -> int:
        """Live passage tokens (SEAL's F_total)."""
        return int(sum(seg.n_tokens - (0 if dl is None else dl.n_tokens) for seg, dl, _ in self.segments))

    def _make_root(self) -> SegmentIntervals:
        parts, total = [], 0
        for s, (seg, dl, _) in enumerate(self.segments):
            live = seg.fm.n_rows - (0 if dl is None else dl.fm.n_rows)  # live tokens + live rows
            if live > 0:
                parts.append((s, 0, seg.fm.n_rows, 0, 0 if dl is None else dl.fm.n_rows))
                total += live
        return SegmentIntervals(total, tuple(parts))

    def interval(self, pattern: Sequence[int]) -> SegmentIntervals:
        """Per-segment SA intervals of an n-gram, for incremental `extend`."""
        if isinstance(pattern, (str, bytes)):
            raise ConfigError("pass token ids, not a string: encode it with the store's tokenizer first")
        ivs = self._root
        for t in pattern:
            if not ivs.parts:
                break
            ivs = self.extend(ivs, t)
        return ivs

    def extend(self, ivs: SegmentIntervals, token: int) -> SegmentIntervals:
        """Intervals of the n-gram + [token]; segments left with no live occurrence are dropped."""
        parts, total = [], 0
        for s, sp, ep, dsp, dep in ivs.parts:
            seg, dl, _ = self.segments[s]
            sp, ep = seg.extend(sp, ep, token)
            if sp == ep:
                continue
            if dsp < dep:
                dsp, dep = dl.extend(dsp, dep, token)
            live = ep - sp - (dep - dsp)
            if live > 0:
                parts.append((s, sp, ep, dsp, dep))
                total += live
        return SegmentIntervals(total, tuple(parts))

    def interval_rows(self, ivs: SegmentIntervals, m: int) -> np.ndarray:
        """Distinct live global rows [r] int64 (ascending) holding the occurrences of an m-gram."""
        out = []
        for s, sp, ep, _, _ in ivs.parts:
            seg, _, live = self.segments[s]
            rows = seg.interval_rows(sp, ep, m)
            if m == 0:
                rows = rows[rows < seg.n_docs]  # the position after the final separator
            if live is not None:
                rows = rows[live[rows]]
            out.append(rows + self.offsets[s] if s else rows)
        return out[0] if len(out) == 1 else np.concatenate(out) if out else _EMPTY

    def count(self, pattern: Sequence[int]) -> int:
        """Live occurrences of an n-gram; the empty one occurs at every offset 0..len of every live passage."""
        return sum(seg.count(pattern) - (0 if dl is None else dl.count(pattern)) for seg, dl, _ in self.segments)

    def locate(self, pattern: Sequence[int], limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Live occurrences -> (global rows [k] int64, offsets [k] int64) sorted by (row, offset); with `limit`,
        k = min(limit, count) (segments in order, each in SA order: deterministic, not the first in row order)."""
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise ConfigError(f"limit must be an int >= 0 or None, got {limit!r}")
        if isinstance(pattern, (str, bytes)):
            raise ConfigError("pass token ids, not a string: encode it with the store's tokenizer first")
        pat = [int(t) for t in pattern]
        if any(t < 0 or t >= SEP for t in pat):
            return _EMPTY, _EMPTY
        need = limit
        rows_out, offs_out = [], []
        for s, (seg, _, live) in enumerate(self.segments):
            if need == 0:
                break
            sp, ep = seg.interval(pat)
            while sp < ep and need != 0:
                chunk = ep - sp if need is None else min(ep - sp, max(need, 256))
                pos = _fm.locate_interval(seg.fm, sp, sp + chunk, len(pat))
                sp += chunk
                pos = pos[pos < seg.fm.n]  # the empty pattern's position after the final separator
                rows, offs = seg.rows_offsets(pos)
                if live is not None:
                    keep = live[rows]
                    rows, offs = rows[keep], offs[keep]
                if need is not None:
                    rows, offs = rows[:need], offs[:need]
                    need -= len(rows)
                rows_out.append(rows + self.offsets[s])
                offs_out.append(offs)
        if not rows_out:
            return _EMPTY, _EMPTY
        rows, offs = np.concatenate(rows_out), np.concatenate(offs_out)
        order = np.lexsort((offs, rows))
        return rows[order], offs[order]

    def continuations(self, prefix: Sequence[int], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k most frequent live next tokens after `prefix` -> (token ids [k'] int64, counts [k'] int64),
        ordered (count desc, id asc); every segment's full distribution is summed, so it costs O(distinct)."""
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise ConfigError(f"k must be an int >= 0, got {k!r}")
        if k == 0:
            return self.segments[0][0].continuations(prefix, 0)  # validates `prefix`
        syms, cnts = [], []
        for seg, dl, _ in self.segments:
            for ix, sign in ((seg, 1), (dl, -1)):
                if ix is not None:
                    t, c = ix.continuations(prefix, len(ix.fm.symbols))
                    syms.append(t)
                    cnts.append(c * sign)
        t, inv = np.unique(np.concatenate(syms), return_inverse=True)
        c = np.bincount(inv.ravel(), weights=np.concatenate(cnts), minlength=len(t)).round().astype(np.int64)
        keep = c > 0
        t, c = t[keep], c[keep]
        order = np.lexsort((t, -c))[:k]
        return t[order].astype(np.int64), c[order]

    def longest_suffix_match(self, tokens: Sequence[int]) -> NgramMatch:
        """Longest suffix of a running token sequence with a live occurrence, its live count and one place
        (the first live one in segment order, SA order within a segment)."""
        toks = matchable_suffix(tokens)
        hi = max(seg.longest_suffix_match(toks).length for seg, _, _ in self.segments)  # an upper bound
        lo, lo_count = 0, self.count(())
        while lo < hi:  # live occurrence is monotone in the suffix length
            mid = (lo + hi + 1) // 2
            c = self.count(toks[len(toks) - mid:])
            if c > 0:
                lo, lo_count = mid, c
            else:
                hi = mid - 1
        if lo == 0:
            return NgramMatch(0, lo_count, -1, -1)
        rows, offs = self.locate(toks[len(toks) - lo:], limit=1)
        return NgramMatch(lo, lo_count, int(rows[0]), int(offs[0]))


def _checked(i: int, seg: NgramIndex, deleted: NgramIndex | None, live: np.ndarray | None) -> Segment:
    """Check that the deleted-rows index and the live mask describe the same rows (by count and lengths)."""
    if live is not None:
        live = np.asarray(live)
        if live.dtype != np.bool_ or live.shape != (seg.n_docs,):
            raise ConfigError(f"segment {i}: live mask must be bool [{seg.n_docs}], got {live.dtype} {live.shape}")
        if live.all():
            live = None
    if live is None:
        if deleted is not None:
            raise ConfigError(f"segment {i}: a deleted-rows index was given but no row is marked deleted")
        return seg, None, None
    if deleted is None:
        raise ConfigError(f"segment {i}: {int((~live).sum())} rows are deleted but no deleted-rows index was "
                          "given: build one over the deleted passages' tokens (build_ngram)")
    lens = np.diff(seg.doc_starts) - 1
    dlens = np.diff(deleted.doc_starts) - 1
    if not np.array_equal(np.sort(lens[~live]), np.sort(dlens)):
        raise ConfigError(f"segment {i}: the deleted-rows index ({deleted.n_docs} rows, {deleted.n_tokens} tokens) "
                          f"does not hold the {int((~live).sum())} masked rows: rebuild it from their passages")
    return seg, deleted, live
