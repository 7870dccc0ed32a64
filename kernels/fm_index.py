"""Token-level FM-index: build, count, locate, continuations, longest suffix match; C kernel + plain twins.

Design (as SEAL/RetroLLM's sdsl `csa_wt_int`): the index is built over the REVERSED text, so a left-to-right
pattern is a backward search, appending a token is one O(levels) step (`extend`), and the BWT symbols in a
pattern's suffix-array interval are exactly the tokens that FOLLOW it (`continuations`, by an exact top-k
descent of the wavelet tree). Symbols are compacted to codes 1..sigma (code 0 is the sentinel); the BWT is a
wavelet matrix (Claude & Navarro 2012): per level a bit vector with uint32 rank checkpoints every `occ_rate`
bits, i.e. ceil(log2(sigma+1)) * (1 + 32/occ_rate) bits per token. Locate samples every `sa_rate`-th text
position (a marked-row bit vector + uint32 samples) and walks at most sa_rate-1 LF steps per occurrence.

Positions are offsets into the original (forward) text. The empty pattern occurs at every position 0..n
(n+1 times, like `str.count("")`); its continuations are the unigram counts. Texts must be < 2**32 - 1 long.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import numpy as np

__all__ = ["HAVE_EXTENSION", "FMIndex", "PlainFM", "SuffixMatch", "build", "interval", "count", "extend", "locate",
           "locate_interval", "continuations", "longest_suffix_match", "build_reference", "plain",
           "interval_reference", "count_reference", "locate_reference", "continuations_reference",
           "longest_suffix_match_reference", "ARRAY_NAMES"]

_log = logging.getLogger(__name__)

try:
    from kernels import _fm as _ext

    HAVE_EXTENSION = True
except ImportError:  # not built: `pip install -e .` or `python setup.py build_ext --inplace`
    _ext = None
    HAVE_EXTENSION = False
    _log.warning("kernels._fm is not built; FM-index queries fall back to the slow numpy reference "
                 "(decoding the whole BWT and suffix array once). Build it with `pip install -e .` or "
                 "`python setup.py build_ext --inplace`.")

ARRAY_NAMES = ("symbols", "C", "wm_bits", "wm_ckpt", "wm_zeros", "mark_bits", "mark_ckpt", "samples")
_MAX_LEN = 2**32 - 2
_LUT_LIMIT = 1 << 24


class SuffixMatch(NamedTuple):
    """Longest suffix of a token sequence found in the text: its length, SA interval and one start (-1 if none)."""

    length: int
    sp: int
    ep: int
    position: int

    @property
    def count(self) -> int:
        return self.ep - self.sp


@dataclass(frozen=True, eq=False)
class FMIndex:
    """The compressed index arrays (all saved as .npy); `n` = text length, rows = n + 1 (sentinel)."""

    symbols: np.ndarray  # [sigma] uint32, sorted: code c >= 1 is symbols[c - 1]
    C: np.ndarray  # [sigma + 2] int64: first SA row of each code
    wm_bits: np.ndarray  # [L, W] uint64, W = (n + 1) // 64 + 1
    wm_ckpt: np.ndarray  # [L, NB + 1] uint32, NB = (n + 1) // occ_rate
    wm_zeros: np.ndarray  # [L] int64
    mark_bits: np.ndarray  # [W] uint64: rows whose suffix start is a multiple of sa_rate
    mark_ckpt: np.ndarray  # [NB + 1] uint32
    samples: np.ndarray  # [n_marked] uint32: reversed-text suffix start of each marked row, in row order
    n: int
    occ_rate: int
    sa_rate: int
    sym_start: np.ndarray = field(init=False, repr=False)  # [sigma + 1] int64, derived from C (not saved)
    _obj: object = field(init=False, repr=False, compare=False, default=None)
    _plain: list = field(init=False, repr=False, compare=False, default_factory=list)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sym_start", _sym_start(np.asarray(self.C, dtype=np.int64), self.wm_bits.shape[0]))
        if _ext is not None:  # the C object checks every array length once; queries then trust them
            order = ("wm_bits", "wm_ckpt", "wm_zeros", "sym_start", "C", "symbols", "mark_bits", "mark_ckpt", "samples")
            obj = _ext.FM(*(np.ascontiguousarray(getattr(self, a)) for a in order), self.n + 1,
                          self.wm_bits.shape[0], self.occ_rate, self.sa_rate, len(self.symbols), len(self.samples))
            object.__setattr__(self, "_obj", obj)

    @property
    def n_rows(self) -> int:
        return self.n + 1

    @property
    def nbytes(self) -> int:
        return int(sum(getattr(self, a).nbytes for a in ARRAY_NAMES))

    def arrays(self) -> dict[str, np.ndarray]:
        return {a: getattr(self, a) for a in ARRAY_NAMES}


@dataclass(frozen=True)
class PlainFM:
    """Uncompressed twin: full suffix array and BWT over the reversed text + sentinel (codes as in FMIndex)."""

    symbols: np.ndarray  # [sigma] uint32 sorted
    sa: np.ndarray  # [n + 1] int64
    bwt: np.ndarray  # [n + 1] int64 codes
    C: np.ndarray  # [sigma + 2] int64
    n: int


# ----------------------------------------------------------------------------------------------- build

def _check_text(text: Sequence[int] | np.ndarray) -> np.ndarray:
    a = np.asarray(text)
    if a.ndim != 1:
        raise ValueError(f"text must be 1-D, got shape {a.shape}")
    if a.size and (a.dtype.kind not in "iu" or int(a.min()) < 0 or int(a.max()) > 0xFFFFFFFF):
        raise ValueError("text must hold integer symbols in [0, 2**32)")
    if len(a) > _MAX_LEN:
        raise ValueError(f"text of {len(a)} symbols is too long (max {_MAX_LEN})")
    return a.astype(np.uint32, copy=False)


def _check_rates(sa_rate: int, occ_rate: int) -> None:
    if not isinstance(sa_rate, (int, np.integer)) or isinstance(sa_rate, bool) or sa_rate < 1:
        raise ValueError(f"sa_rate must be a positive int, got {sa_rate!r}")
    if (not isinstance(occ_rate, (int, np.integer)) or isinstance(occ_rate, bool) or occ_rate < 64
            or occ_rate & (occ_rate - 1)):
        raise ValueError(f"occ_rate must be a power of two >= 64, got {occ_rate!r}")


def _reversed_codes(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(symbols [sigma] uint32, R [n + 1] uint32): reversed text as codes 1..sigma, then the sentinel 0."""
    small = a < _LUT_LIMIT  # token ids: a lookup table is O(n); rare large symbols (separators) are sorted
    present = np.zeros(int(a[small].max()) + 1 if small.any() else 0, dtype=bool)
    present[a[small]] = True
    big = np.unique(a[~small])
    symbols = np.concatenate([np.flatnonzero(present).astype(np.uint32), big.astype(np.uint32)])
    lut = np.cumsum(present, dtype=np.int64)  # code of a present small symbol s = lut[s] (1-based)
    codes = np.empty(len(a), dtype=np.int64)
    codes[small] = lut[a[small]]
    codes[~small] = np.searchsorted(big, a[~small]) + len(symbols) - len(big) + 1
    r = np.empty(len(a) + 1, dtype=np.uint32)
    r[:-1] = codes[::-1]
    r[-1] = 0
    return symbols, r


def _popcount(words: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words).astype(np.int64)
    return np.unpackbits(words.view(np.uint8)).reshape(len(words), 64).sum(axis=1, dtype=np.int64)


def _bitvector(bits: np.ndarray, occ_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """bool [n] -> (words [n // 64 + 1] uint64 LSB-first, checkpoints [n // occ_rate + 1] uint32)."""
    n = len(bits)
    w = n // 64 + 1
    packed = np.zeros(w * 8, dtype=np.uint8)
    packed[: (n + 7) // 8] = np.packbits(bits.astype(np.uint8), bitorder="little")
    words = packed.view("<u8").astype(np.uint64)
    cum = np.zeros(w + 1, dtype=np.int64)
    np.cumsum(_popcount(words), out=cum[1:])
    ckpt = cum[np.arange(n // occ_rate + 1, dtype=np.int64) * (occ_rate // 64)].astype(np.uint32)
    return words, ckpt


def _bit_reverse(x: np.ndarray, n_bits: int) -> np.ndarray:
    out = np.zeros_like(x)
    for b in range(n_bits):
        out |= ((x >> b) & 1) << (n_bits - 1 - b)
    return out


def _sym_start(c_arr: np.ndarray, n_levels: int) -> np.ndarray:
    """Where each code's run starts on the last wavelet level, which is ordered by bit-reversed code."""
    counts = np.diff(c_arr)
    order = np.argsort(_bit_reverse(np.arange(len(counts), dtype=np.int64), n_levels), kind="stable")
    start = np.empty(len(counts), dtype=np.int64)
    start[order] = np.cumsum(counts[order]) - counts[order]
    return start


def _levels(sigma: int) -> int:
    return max(1, int(sigma).bit_length())  # codes 0..sigma


def _from_sa(symbols: np.ndarray, r: np.ndarray, sa: np.ndarray, sa_rate: int, occ_rate: int) -> FMIndex:
    n_rows = len(r)
    sigma = len(symbols)
    bwt = r[sa - 1]  # sa == 0 wraps to r[-1], the sentinel
    counts = np.bincount(bwt, minlength=sigma + 1).astype(np.int64)
    c_arr = np.zeros(sigma + 2, dtype=np.int64)
    np.cumsum(counts, out=c_arr[1:])
    n_levels = _levels(sigma)
    vals = bwt
    bits, ckpts, zeros = [], [], np.empty(n_levels, dtype=np.int64)
    for lev in range(n_levels):
        b = ((vals >> np.uint32(n_levels - 1 - lev)) & np.uint32(1)).astype(bool)
        words, ck = _bitvector(b, occ_rate)
        bits.append(words)
        ckpts.append(ck)
        zeros[lev] = n_rows - int(np.count_nonzero(b))
        vals = np.concatenate([vals[~b], vals[b]])  # stable partition: the next level's order
    mark = sa % sa_rate == 0
    mbits, mckpt = _bitvector(mark, occ_rate)
    return FMIndex(symbols, c_arr, np.stack(bits), np.stack(ckpts), zeros, mbits, mckpt,
                   sa[mark].astype(np.uint32), n_rows - 1, int(occ_rate), int(sa_rate))


def build(text: Sequence[int] | np.ndarray, sa_rate: int = 16, occ_rate: int = 256) -> FMIndex:
    """FM-index of `text` (uint32 symbols); suffix array by divsufsort (pydivsufsort) over the reversed codes."""
    _check_rates(sa_rate, occ_rate)
    a = _check_text(text)
    import pydivsufsort  # a core dependency; imported here so `import kernels.fm_index` stays cheap

    symbols, r = _reversed_codes(a)
    sa = np.asarray(pydivsufsort.divsufsort(r), dtype=np.int64)
    return _from_sa(symbols, r, sa, sa_rate, occ_rate)


def build_reference(text: Sequence[int] | np.ndarray) -> PlainFM:
    """Plain twin of `build`: suffix array by sorting suffixes as Python tuples (small texts only)."""
    a = _check_text(text)
    symbols, r = _reversed_codes(a)
    rl = r.tolist()
    sa = np.array(sorted(range(len(rl)), key=lambda i: rl[i:]), dtype=np.int64)
    bwt = r[sa - 1].astype(np.int64)
    c_arr = np.zeros(len(symbols) + 2, dtype=np.int64)
    np.cumsum(np.bincount(bwt, minlength=len(symbols) + 1), out=c_arr[1:])
    return PlainFM(symbols, sa, bwt, c_arr, len(a))


def plain(fm: FMIndex) -> PlainFM:
    """Decode the compressed index into its plain twin (BWT from the wavelet matrix, SA by LF walks); cached."""
    if fm._plain:
        return fm._plain[0]
    n_rows, n_levels = fm.n_rows, fm.wm_bits.shape[0]
    pos = np.arange(n_rows, dtype=np.int64)
    code = np.zeros(n_rows, dtype=np.int64)
    for lev in range(n_levels):
        b = _get_bits(fm.wm_bits[lev], pos)
        r1 = _rank1(fm.wm_bits[lev], fm.wm_ckpt[lev], fm.occ_rate, pos)
        code = (code << 1) | b
        pos = np.where(b == 1, fm.wm_zeros[lev] + r1, pos - r1)
    bwt = code
    lf_all = fm.C[bwt] + pos - fm.sym_start[bwt]
    sa = np.full(n_rows, -1, dtype=np.int64)
    rows, cur, steps = np.arange(n_rows, dtype=np.int64), np.arange(n_rows, dtype=np.int64), 0
    while len(rows):
        marked = _get_bits(fm.mark_bits, cur) == 1
        j = _rank1(fm.mark_bits, fm.mark_ckpt, fm.occ_rate, cur[marked])
        sa[rows[marked]] = fm.samples[j].astype(np.int64) + steps
        rows, cur, steps = rows[~marked], lf_all[cur[~marked]], steps + 1
        if steps > fm.sa_rate:
            raise ValueError("corrupt sampled suffix array: rebuild the index")
    p = PlainFM(fm.symbols, sa, bwt, fm.C, fm.n)
    fm._plain.append(p)
    return p


def _get_bits(words: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return ((words[pos >> 6] >> (pos & 63).astype(np.uint64)) & np.uint64(1)).astype(np.int64)


def _rank1(words: np.ndarray, ckpt: np.ndarray, occ_rate: int, pos: np.ndarray) -> np.ndarray:
    """Ones before each position (vectorized over `pos`), from checkpoints + popcounts."""
    cum = np.zeros(len(words) + 1, dtype=np.int64)
    np.cumsum(_popcount(words), out=cum[1:])
    w = pos >> 6
    part = _popcount(words[w] & ((np.uint64(1) << (pos & 63).astype(np.uint64)) - np.uint64(1)))
    return cum[w] + part  # == ckpt[pos // occ_rate] + in-block popcounts; ckpt is validated by the loader


# ----------------------------------------------------------------------------------------------- queries

def _seq(pattern: Sequence[int] | np.ndarray) -> list[int]:
    if isinstance(pattern, (str, bytes)):
        raise ValueError("pattern must be a sequence of int symbols, not a string")
    return [int(t) for t in pattern]


def interval(fm: FMIndex, pattern: Sequence[int]) -> tuple[int, int]:
    """Suffix-array interval [sp, ep) of `pattern` ((0, 0) when absent; (0, n + 1) for the empty pattern)."""
    if fm._obj is None:
        return interval_reference(plain(fm), pattern)
    return fm._obj.interval(_seq(pattern))


def count(fm: FMIndex, pattern: Sequence[int]) -> int:
    """Occurrences of `pattern` in the text: O(len(pattern) * levels) rank steps."""
    if fm._obj is None:
        return count_reference(plain(fm), pattern)
    return fm._obj.count(_seq(pattern))


def extend(fm: FMIndex, sp: int, ep: int, symbol: int) -> tuple[int, int]:
    """Interval of pattern + [symbol] from the interval [sp, ep) of pattern: one backward step."""
    if not 0 <= sp <= ep <= fm.n_rows:
        raise ValueError(f"bad interval [{sp}, {ep}) for {fm.n_rows} rows")
    if fm._obj is None:
        return _extend_plain(plain(fm), sp, ep, int(symbol))
    return fm._obj.extend(int(sp), int(ep), int(symbol))


def locate_interval(fm: FMIndex, sp: int, ep: int, m: int, limit: int | None = None) -> np.ndarray:
    """Text start positions [min(ep - sp, limit)] int64 of the rows sp.. of an m-symbol pattern, in SA order."""
    if not 0 <= sp <= ep <= fm.n_rows:
        raise ValueError(f"bad interval [{sp}, {ep}) for {fm.n_rows} rows")
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        ep = min(ep, sp + int(limit))
    if fm._obj is None:
        p = plain(fm)
        return fm.n - p.sa[sp:ep] - m
    out = np.empty(ep - sp, dtype=np.int64)
    fm._obj.locate(int(sp), int(ep), out)
    return fm.n - out - m


def locate(fm: FMIndex, pattern: Sequence[int], limit: int | None = None) -> np.ndarray:
    """Start positions [min(count, limit)] int64 of `pattern`, the first `limit` rows of its SA interval."""
    pat = _seq(pattern)
    sp, ep = interval(fm, pat)
    return locate_interval(fm, sp, ep, len(pat), limit)


def continuations(fm: FMIndex, prefix: Sequence[int], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k most frequent symbols following `prefix` -> (symbols [k'] int64, counts [k'] int64),
    ordered (count desc, symbol asc); an occurrence at the very end of the text has no continuation."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 0:
        raise ValueError(f"k must be an int >= 0, got {k!r}")
    if fm._obj is None:
        return continuations_reference(plain(fm), prefix, k)
    sp, ep = fm._obj.interval(_seq(prefix))
    k = min(int(k), ep - sp)
    syms, cnts = np.empty(k, dtype=np.int64), np.empty(k, dtype=np.int64)
    got = fm._obj.continuations(sp, ep, k, syms, cnts)
    return syms[:got], cnts[:got]


def longest_suffix_match(fm: FMIndex, tokens: Sequence[int]) -> SuffixMatch:
    """Longest suffix of `tokens` occurring in the text (binary search on its length: O(m log m) steps)."""
    if fm._obj is None:
        return longest_suffix_match_reference(plain(fm), tokens)
    length, sp, ep = fm._obj.longest_suffix(_seq(tokens))
    pos = int(locate_interval(fm, sp, ep, length, 1)[0]) if length else -1
    return SuffixMatch(length, sp, ep, pos)


# ----------------------------------------------------------------------------------------------- plain twins

def _code(p: PlainFM, symbol: int) -> int:
    i = int(np.searchsorted(p.symbols, symbol)) if 0 <= symbol <= 0xFFFFFFFF else len(p.symbols)
    return i + 1 if i < len(p.symbols) and int(p.symbols[i]) == symbol else -1


def _extend_plain(p: PlainFM, sp: int, ep: int, symbol: int) -> tuple[int, int]:
    c = _code(p, symbol)
    if c < 0 or sp >= ep:
        return 0, 0
    sp, ep = int(p.C[c] + np.count_nonzero(p.bwt[:sp] == c)), int(p.C[c] + np.count_nonzero(p.bwt[:ep] == c))
    return (sp, ep) if sp < ep else (0, 0)


def interval_reference(p: PlainFM, pattern: Sequence[int]) -> tuple[int, int]:
    """Backward search with rank = a count over the plain BWT prefix."""
    sp, ep = 0, p.n + 1
    for t in _seq(pattern):
        sp, ep = _extend_plain(p, sp, ep, t)
        if sp == ep:
            return 0, 0
    return sp, ep


def count_reference(p: PlainFM, pattern: Sequence[int]) -> int:
    sp, ep = interval_reference(p, pattern)
    return ep - sp


def locate_reference(p: PlainFM, pattern: Sequence[int], limit: int | None = None) -> np.ndarray:
    pat = _seq(pattern)
    sp, ep = interval_reference(p, pat)
    if limit is not None:
        ep = min(ep, sp + int(limit))
    return p.n - p.sa[sp:ep] - len(pat)


def continuations_reference(p: PlainFM, prefix: Sequence[int], k: int) -> tuple[np.ndarray, np.ndarray]:
    sp, ep = interval_reference(p, prefix)
    codes, cnts = np.unique(p.bwt[sp:ep], return_counts=True)
    keep = codes > 0  # the sentinel is not a symbol
    codes, cnts = codes[keep], cnts[keep].astype(np.int64)
    order = np.lexsort((codes, -cnts))[:k]
    return p.symbols[codes[order] - 1].astype(np.int64), cnts[order]


def longest_suffix_match_reference(p: PlainFM, tokens: Sequence[int]) -> SuffixMatch:
    """Longest first: try every suffix length from m down."""
    toks = _seq(tokens)
    for length in range(len(toks), 0, -1):
        sp, ep = interval_reference(p, toks[len(toks) - length:])
        if ep > sp:
            return SuffixMatch(length, sp, ep, int(p.n - p.sa[sp] - length))
    return SuffixMatch(0, 0, p.n + 1, -1)
