"""The n-gram store: a token-level FM-index over every passage's generator token ids (kernels/fm_index.py).

The text is passage 0, SEP, passage 1, SEP, ... with SEP = 2**32 - 1 (never a token id), so no n-gram spans two
passages; `doc_starts` maps a text position to (row, token offset). Rows are passage indices in build order.
Saved as .npy (memory-mapped on load, no pickle) + params.json; `load_ngram` validates every array.
Index passages and queries through `ngram_text` so a word's token is the same (leading-space) variant in both,
and runs of whitespace are one space in both (a phrase typed with single spaces finds text that has two).
"""
from __future__ import annotations

import functools
import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from indexers.errors import ConfigError, CorpusError, IndexFormatError, missing, positive_int
from indexers.index_dir import load_arrays
from kernels import fm_index as _fm

__all__ = ["NgramParams", "NgramIndex", "NgramMatch", "SEP", "build_ngram", "load_ngram", "ngram_tokenizer",
           "ngram_text", "encode", "matchable_suffix"]

FORMAT_VERSION = 1
SEP = 2**32 - 1  # passage separator symbol; token ids are < 2**31


@dataclass(frozen=True)
class NgramParams:
    """tokenizer: the generator whose token ids are indexed (qwen-0.5b and qwen-1.5b share one vocab).
    occ_rate: bits between rank checkpoints (power of two >= 64); sa_rate: text positions per SA sample.
    collapse_spaces: runs of whitespace are indexed and queried as one space (False in stores built before it)."""

    tokenizer: str = "qwen-0.5b"
    occ_rate: int = 256
    sa_rate: int = 16
    collapse_spaces: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.tokenizer, str) or not self.tokenizer:
            raise ConfigError(f"NgramParams.tokenizer must be a model name, got {self.tokenizer!r}")
        o, s = self.occ_rate, self.sa_rate
        if not isinstance(o, int) or isinstance(o, bool) or o < 64 or o & (o - 1):
            raise ConfigError(f"NgramParams.occ_rate must be a power of two >= 64, got {o!r}")
        positive_int(s, "NgramParams.sa_rate")
        if not isinstance(self.collapse_spaces, bool):
            raise ConfigError(f"NgramParams.collapse_spaces must be True or False, got {self.collapse_spaces!r}")

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> "NgramParams":
        """The params a saved store or manifest records; one saved before `collapse_spaces` existed kept spaces."""
        return cls(**{"collapse_spaces": False, **saved})


class NgramMatch(NamedTuple):
    """The longest suffix of a token sequence found in the corpus: length, occurrences and one (row, offset)."""

    length: int
    count: int
    row: int  # -1 when length == 0
    offset: int


class NgramIndex:
    """A loaded n-gram store: the FM-index arrays and doc_starts [n_docs + 1] int64 (text offset of each row)."""

    def __init__(self, params: NgramParams, fm: _fm.FMIndex, doc_starts: np.ndarray) -> None:
        self.params = params
        self.fm = fm
        self.doc_starts = doc_starts

    @property
    def n_docs(self) -> int:
        return len(self.doc_starts) - 1

    @property
    def n_tokens(self) -> int:
        """Passage tokens indexed (separators excluded)."""
        return self.fm.n - self.n_docs

    @property
    def nbytes(self) -> int:
        return self.fm.nbytes + self.doc_starts.nbytes

    @property
    def bytes_per_token(self) -> float:
        """Index bytes per indexed passage token (all arrays, separators' share included)."""
        return self.nbytes / max(1, self.n_tokens)

    def _clean(self, tokens: Sequence[int]) -> list[int] | None:
        """tokens as ints, or None when one cannot be a token id (so the n-gram cannot occur)."""
        if isinstance(tokens, (str, bytes)):
            raise ConfigError("pass token ids, not a string: encode it with the store's tokenizer first")
        out = [int(t) for t in tokens]
        return None if any(t < 0 or t >= SEP for t in out) else out

    def interval(self, pattern: Sequence[int]) -> tuple[int, int]:
        """SA interval [sp, ep) of an n-gram, for incremental `extend` (drafting, constrained decoding)."""
        pat = self._clean(pattern)
        return (0, 0) if pat is None else _fm.interval(self.fm, pat)

    def extend(self, sp: int, ep: int, token: int) -> tuple[int, int]:
        """Interval of the n-gram + [token] from the n-gram's interval: one O(levels) step."""
        if not 0 <= int(token) < SEP:
            return 0, 0
        return _fm.extend(self.fm, sp, ep, int(token))

    def count(self, pattern: Sequence[int]) -> int:
        """Occurrences of an n-gram in the corpus; the empty one occurs at every offset 0..len of every passage."""
        pat = self._clean(pattern)
        if pat is None:
            return 0
        return _fm.count(self.fm, pat) - (0 if pat else 1)  # minus the position after the final separator

    def locate(self, pattern: Sequence[int], limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Occurrences -> (rows [k] int64, offsets [k] int64) sorted by (row, offset); with `limit`, k <= limit
        occurrences (the first of the suffix-array interval: deterministic, not the first in row order)."""
        pat = self._clean(pattern)
        if pat is None:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        pos = _fm.locate(self.fm, pat, limit)
        pos = np.sort(pos[pos < self.fm.n]) if not pat else np.sort(pos)
        return self.rows_offsets(pos)

    def interval_rows(self, sp: int, ep: int, m: int) -> np.ndarray:
        """Distinct rows [r] int64 (ascending) holding the occurrences in SA interval [sp, ep) of an m-gram."""
        pos = _fm.locate_interval(self.fm, sp, ep, m)
        return np.unique(np.searchsorted(self.doc_starts, pos, side="right") - 1).astype(np.int64)

    def rows_offsets(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Text positions -> (rows, offsets) int64."""
        rows = np.searchsorted(self.doc_starts, positions, side="right") - 1
        return rows.astype(np.int64), (positions - self.doc_starts[rows]).astype(np.int64)

    def continuations(self, prefix: Sequence[int], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k most frequent next tokens after `prefix` -> (token ids [k'] int64, counts [k'] int64), ordered
        (count desc, id asc); passage ends are not tokens and are left out."""
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise ConfigError(f"k must be an int >= 0, got {k!r}")
        pat = self._clean(prefix)
        if pat is None or k == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        syms, cnts = _fm.continuations(self.fm, pat, k + 1)
        keep = syms != SEP
        return syms[keep][:k], cnts[keep][:k]

    def longest_suffix_match(self, tokens: Sequence[int]) -> NgramMatch:
        """Longest suffix of a running token sequence that occurs in the corpus, and one place it occurs."""
        m = _fm.longest_suffix_match(self.fm, matchable_suffix(tokens))
        if m.length == 0:
            return NgramMatch(0, self.count(()), -1, -1)
        rows, offs = self.rows_offsets(np.array([m.position], dtype=np.int64))
        return NgramMatch(m.length, m.count, int(rows[0]), int(offs[0]))

    def save(self, directory: Path) -> list[str]:
        """Write the store into `directory` (created if needed); returns the file names written."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        names = []
        for name, arr in {**self.fm.arrays(), "doc_starts": self.doc_starts}.items():
            np.save(directory / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
            names.append(f"{name}.npy")
        meta = {"format": "adarag-ngram", "version": FORMAT_VERSION, "params": asdict(self.params),
                "n": self.fm.n, "n_docs": self.n_docs, "n_symbols": int(len(self.fm.symbols)),
                "levels": int(self.fm.wm_bits.shape[0]), "n_samples": int(len(self.fm.samples)), "sep": SEP}
        (directory / "params.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return names + ["params.json"]

    @classmethod
    def load(cls, directory: Path) -> "NgramIndex":
        return load_ngram(directory)


def matchable_suffix(tokens: Sequence[int]) -> list[int]:
    """The tokens after the last one that cannot be a token id (no suffix match can reach past it)."""
    if isinstance(tokens, (str, bytes)):
        raise ConfigError("pass token ids, not a string: encode it with the store's tokenizer first")
    toks = [int(t) for t in tokens]
    bad = [i for i, t in enumerate(toks) if t < 0 or t >= SEP]
    return toks[bad[-1] + 1:] if bad else toks


def build_ngram(passage_token_ids: Sequence[Sequence[int]], params: NgramParams = NgramParams()) -> NgramIndex:
    """Index passages given as token-id lists (row i = passage_token_ids[i]; empty passages are allowed)."""
    if len(passage_token_ids) == 0:
        raise CorpusError("cannot build an n-gram index over 0 passages: pass at least one passage")
    lens = np.empty(len(passage_token_ids), dtype=np.int64)
    for i, p in enumerate(passage_token_ids):
        if isinstance(p, (str, bytes)):
            raise CorpusError(f"passage {i} is a str, not token ids: encode it with the store's tokenizer first")
        lens[i] = len(p)
    doc_starts = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens + 1, out=doc_starts[1:])
    flat = np.fromiter(itertools.chain.from_iterable(passage_token_ids), dtype=np.int64, count=int(lens.sum()))
    if flat.size and (int(flat.min()) < 0 or int(flat.max()) >= SEP):
        bad = int(np.searchsorted(np.cumsum(lens), int(np.flatnonzero((flat < 0) | (flat >= SEP))[0]), "right"))
        raise CorpusError(f"passage {bad} holds token ids outside [0, 2**32 - 1): encode it with a tokenizer")
    text = np.full(int(doc_starts[-1]), SEP, dtype=np.int64)
    is_tok = np.ones(len(text), dtype=bool)
    is_tok[doc_starts[1:] - 1] = False
    text[is_tok] = flat
    fm = _fm.build(text, sa_rate=params.sa_rate, occ_rate=params.occ_rate)
    return NgramIndex(params, fm, doc_starts)


def load_ngram(directory: Path) -> NgramIndex:
    """Load a store written by `NgramIndex.save`, checking every array's dtype, shape and rank directory."""
    directory = Path(directory)
    pj = directory / "params.json"
    try:
        meta = json.loads(pj.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexFormatError(f"{pj}: cannot read ({e}); rebuild the index") from e
    if not isinstance(meta, dict) or meta.get("format") != "adarag-ngram" or meta.get("version") != FORMAT_VERSION:
        raise IndexFormatError(f"{pj}: not an adarag-ngram v{FORMAT_VERSION} store (got {str(meta)[:80]}); "
                               "rebuild the index")
    try:
        params = NgramParams.from_saved(meta["params"])
        n, n_docs, sigma = int(meta["n"]), int(meta["n_docs"]), int(meta["n_symbols"])
        levels, n_samples = int(meta["levels"]), int(meta["n_samples"])
        if meta["sep"] != SEP or n < 1 or n_docs < 1 or levels != max(1, sigma.bit_length()):
            raise ValueError("inconsistent sizes")
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise IndexFormatError(f"{pj}: bad field ({e}); rebuild the index") from e
    rows, w, nb = n + 1, (n + 1) // 64 + 1, (n + 1) // params.occ_rate + 1
    want: dict[str, tuple[Any, tuple[int, ...]]] = {
        "symbols": (np.uint32, (sigma,)), "C": (np.int64, (sigma + 2,)),
        "wm_bits": (np.uint64, (levels, w)), "wm_ckpt": (np.uint32, (levels, nb)), "wm_zeros": (np.int64, (levels,)),
        "mark_bits": (np.uint64, (w,)), "mark_ckpt": (np.uint32, (nb,)), "samples": (np.uint32, (n_samples,)),
        "doc_starts": (np.int64, (n_docs + 1,))}
    arrs = load_arrays(directory, want)
    _validate(directory, arrs, rows, params)
    fm = _fm.FMIndex(**{k: arrs[k] for k in _fm.ARRAY_NAMES}, n=n, occ_rate=params.occ_rate, sa_rate=params.sa_rate)
    return NgramIndex(params, fm, arrs["doc_starts"])


def _validate(directory: Path, a: dict[str, np.ndarray], rows: int, params: NgramParams) -> None:
    """Content checks that keep the kernel's reads in bounds: rank checkpoints and zero counts match the bits."""
    def bad(name: str, what: str) -> IndexFormatError:
        return IndexFormatError(f"{directory / (name + '.npy')}: {what}; the index is corrupt: rebuild it")

    for bits_name, ck_name in (("wm_bits", "wm_ckpt"), ("mark_bits", "mark_ckpt")):
        bits = np.atleast_2d(a[bits_name])
        tail = rows - 64 * (bits.shape[1] - 1)  # valid bits in the last word
        if tail < 64 and np.any(bits[:, -1] >> np.uint64(tail)):
            raise bad(bits_name, "bits set past the end")
        pc = np.bitwise_count(bits).astype(np.int64) if hasattr(np, "bitwise_count") else None
        if pc is None:
            pc = np.unpackbits(np.ascontiguousarray(bits).view(np.uint8), axis=1).reshape(
                bits.shape[0], -1, 64).sum(axis=2)
        cum = np.concatenate([np.zeros((bits.shape[0], 1), np.int64), np.cumsum(pc, axis=1)], axis=1)
        step = params.occ_rate // 64
        if not np.array_equal(cum[:, ::step][:, : np.atleast_2d(a[ck_name]).shape[1]], np.atleast_2d(a[ck_name])):
            raise bad(ck_name, "rank checkpoints do not match the bits")
        if bits_name == "wm_bits" and not np.array_equal(rows - cum[:, -1], a["wm_zeros"]):
            raise bad("wm_zeros", "zero counts do not match the bits")
        if bits_name == "mark_bits" and int(cum[0, -1]) != len(a["samples"]):
            raise bad("samples", "sample count does not match the marked rows")
    c = a["C"]
    if c[0] != 0 or c[-1] != rows or np.any(np.diff(c) <= 0):
        raise bad("C", "not a strictly increasing row offset array ending at n + 1")
    if np.any(np.diff(a["symbols"].astype(np.int64)) <= 0):
        raise bad("symbols", "not strictly increasing")
    if len(a["samples"]) and int(a["samples"].max()) >= rows:
        raise bad("samples", f"values outside [0, {rows})")
    ds = a["doc_starts"]
    if ds[0] != 0 or ds[-1] != rows - 1 or np.any(np.diff(ds) < 1):
        raise bad("doc_starts", "not increasing passage offsets from 0 to n")


def ngram_text(text: str, title: str = "", collapse_spaces: bool = True) -> str:
    """The string to tokenize for a passage or a query: a leading space so the first word gets the same
    (space-prefixed) token as mid-sentence, the title first when there is one, and (`collapse_spaces`) every
    run of whitespace as one space, so spacing never decides whether a phrase matches."""
    if collapse_spaces:
        text, title = " ".join(text.split()), " ".join(title.split())
    return " " + (f"{title.strip()}. {text.strip()}" if title.strip() else text.strip())


@functools.lru_cache(maxsize=4)
def ngram_tokenizer(params: NgramParams = NgramParams()) -> "FastTokenizer":
    """The generator's fast tokenizer, loaded offline from its local Hugging Face dir (converted once)."""
    from indexers.model_cache import ensure_hf_dir

    return FastTokenizer(ensure_hf_dir(params.tokenizer, progress=False) / "tokenizer.json")


class FastTokenizer:
    """A Hugging Face `tokenizer.json` run by the `tokenizers` library: the ids transformers' fast tokenizer
    gives (tested), without importing torch and transformers, which cost ~4 s of every add or delete."""

    def __init__(self, path: str | Path) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as e:
            raise missing("generate", "tokenizers") from e
        try:
            self._tok = Tokenizer.from_file(str(path))
        except Exception as e:  # the Rust loader raises its own Exception type
            raise ConfigError(f"{path}: not a Hugging Face tokenizer.json ({e}); delete the model cache folder "
                              "holding it so that it is converted again") from e

    def __call__(self, texts: str | Sequence[str], add_special_tokens: bool = False) -> dict[str, list]:
        """{"input_ids": ids of the text, or of each text}, as a transformers tokenizer answers."""
        if isinstance(texts, str):
            return {"input_ids": self._tok.encode(texts, add_special_tokens=add_special_tokens).ids}
        return {"input_ids": [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=add_special_tokens)]}

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        return [self._tok.id_to_token(int(i)) for i in ids]

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)


_ENCODE_BATCH = 1024  # texts per tokenizer call: its per-token objects are transient, ~56 bytes a token


def encode(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text (pass `ngram_text(...)` strings), no special tokens, batched tokenizer calls."""
    if isinstance(texts, str):
        raise ConfigError("encode takes a list of texts, not one str")
    texts = list(texts)
    return [list(ids) for i in range(0, len(texts), _ENCODE_BATCH)
            for ids in tokenizer(texts[i:i + _ENCODE_BATCH], add_special_tokens=False)["input_ids"]]
