"""The sparse BM25 store: build from token lists, search exactly, save/load as .npy + JSON (no pickle).

Okapi reproduces rank_bm25.BM25Okapi 0.2.2: idf = log(N-n+.5) - log(n+.5) with negative idfs floored at
epsilon * mean idf, per-posting impacts computed in its operation order, and query terms added in order
(duplicates twice). One deliberate deviation: the mean idf is the correctly rounded `math.fsum(idf) / V`, not
rank-bm25's left-to-right sum, so it does not depend on corpus order (segments and shards need that); scores of
floored terms (df > N/2) may differ from rank-bm25 in the last ulp, all others are bit-equal. Hits are only docs
that hold at least one query term; order is (score desc, row asc). Format 2 also keeps per-posting term
frequencies (`tfs`), from which indexers.bm25_segments rescores postings under collection-wide statistics.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from indexers.errors import ConfigError, CorpusError, IndexFormatError, positive_int
from indexers.index_dir import load_arrays
from kernels import bm25 as _k

__all__ = ["BM25Params", "BM25Index", "build_bm25", "load_bm25", "raw_idf", "floor_idf", "mean_idf",
           "length_norms", "posting_impacts"]

FORMAT_VERSION = 2
_READS = (1, 2)  # format 1 has no tfs.npy: it loads with tfs=None
_VARIANTS = ("okapi", "lucene")


@dataclass(frozen=True)
class BM25Params:
    """BM25 settings. epsilon is the Okapi idf floor (x mean idf), as rank-bm25; lucene ignores it."""

    variant: Literal["okapi", "lucene"] = "okapi"
    k1: float = 1.5
    b: float = 0.75
    epsilon: float = 0.25

    def __post_init__(self) -> None:
        if self.variant not in _VARIANTS:
            raise ConfigError(f"unknown BM25 variant {self.variant!r}; choose one of {list(_VARIANTS)}")
        for name in ("k1", "b", "epsilon"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise ConfigError(f"BM25Params.{name} must be a finite number, got {v!r}")
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise ConfigError(f"BM25Params needs k1 >= 0 and 0 <= b <= 1, got k1={self.k1}, b={self.b}")


class BM25Index:
    """Loaded BM25 postings: vocab term -> id, CSC arrays (indptr [V+1] int64, indices [nnz] int32,
    impacts [nnz] float64, tfs [nnz] int32 or None for a format-1 index) and doc lengths [N] int64."""

    def __init__(self, params: BM25Params, vocab: dict[str, int], indptr: np.ndarray, indices: np.ndarray,
                 impacts: np.ndarray, doc_lens: np.ndarray, avgdl: float, tfs: np.ndarray | None = None) -> None:
        self.params = params
        self.vocab = vocab
        self.indptr = indptr
        self.indices = indices
        self.impacts = impacts
        self.doc_lens = doc_lens
        self.avgdl = avgdl
        self.tfs = tfs

    @property
    def n_docs(self) -> int:
        return len(self.doc_lens)

    def _term_ids(self, query_tokens: Sequence[str]) -> list[int]:
        if isinstance(query_tokens, str):
            raise ConfigError("query_tokens must be a list of analyzed tokens, not a str: tokenize it first")
        get = self.vocab.get
        return [i for i in map(get, query_tokens) if i is not None]  # unknown terms add 0: dropping them is exact

    def search(self, query_tokens: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows for one analyzed query -> (rows [k'] int64, scores [k'] float64), k' <= k."""
        _check_k(k)
        terms = self._term_ids(query_tokens)
        if not terms or self.n_docs == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        return _k.topk(self.indptr, self.indices, self.impacts, self.n_docs, np.array(terms, dtype=np.int64), k)

    def search_batch(self, queries: Sequence[Sequence[str]], k: int,
                     n_threads: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
        """`search` for many queries in one GIL-free kernel call; n_threads splits queries across cores."""
        _check_k(k)
        if not isinstance(n_threads, int) or n_threads < 1:
            raise ConfigError(f"n_threads must be a positive int, got {n_threads!r}")
        if len(queries) == 0:
            return []
        if self.n_docs == 0:
            return [(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)) for _ in queries]
        q_indptr, q_terms = _k.pack_queries([self._term_ids(q) for q in queries])
        ids, scores, counts = _k.topk_batch(self.indptr, self.indices, self.impacts, self.n_docs,
                                            q_indptr, q_terms, k, n_threads)
        return [(ids[i, :c], scores[i, :c]) for i, c in enumerate(counts.tolist())]

    def save(self, directory: Path) -> list[str]:
        """Write the index into `directory` (created if needed); returns the file names written."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        names = []
        for name, arr in _arrays(self).items():
            np.save(directory / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
            names.append(f"{name}.npy")
        terms = [""] * len(self.vocab)
        for t, i in self.vocab.items():
            terms[i] = t
        (directory / "vocab.json").write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")
        version = FORMAT_VERSION if self.tfs is not None else 1  # a loaded format-1 index stays format 1
        meta = {"format": "adarag-bm25", "version": version, "params": asdict(self.params),
                "n_docs": self.n_docs, "n_terms": len(self.vocab), "nnz": int(len(self.indices)),
                "avgdl": self.avgdl}
        (directory / "params.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return names + ["vocab.json", "params.json"]

    @classmethod
    def load(cls, directory: Path) -> "BM25Index":
        return load_bm25(directory)


def _arrays(index: BM25Index) -> dict[str, np.ndarray]:
    arrs = {"indptr": index.indptr, "indices": index.indices, "impacts": index.impacts, "doc_lens": index.doc_lens}
    return arrs if index.tfs is None else {**arrs, "tfs": index.tfs}


def _check_k(k: int) -> None:
    positive_int(k, "k")


def build_bm25(token_lists: Sequence[Sequence[str]], params: BM25Params = BM25Params()) -> BM25Index:
    """Index analyzed docs (row i = token_lists[i]; empty docs count in N and avgdl)."""
    n = len(token_lists)
    if n == 0:
        raise CorpusError("cannot build a BM25 index over 0 documents: pass at least one document")
    vocab: dict[str, int] = {}  # first-appearance order == rank-bm25's idf summation order
    setdefault = vocab.setdefault
    doc_lens = np.empty(n, dtype=np.int64)
    chunks = []
    for i, doc in enumerate(token_lists):
        if isinstance(doc, str):
            raise CorpusError(f"document {i} is a str, not a token list: tokenize it first")
        doc_lens[i] = len(doc)
        chunks.append([setdefault(t, len(vocab)) for t in doc])
    v = len(vocab)
    term = np.fromiter((t for c in chunks for t in c), dtype=np.int64, count=int(doc_lens.sum()))
    doc = np.repeat(np.arange(n, dtype=np.int64), doc_lens)
    keys, tf = np.unique(term * n + doc, return_counts=True)  # sorted by (term, doc)
    p_term, p_doc = np.divmod(keys, n)
    df = np.bincount(p_term, minlength=v)
    indptr = np.zeros(v + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    avgdl = int(doc_lens.sum()) / n  # Python int / int, as rank-bm25
    idf = _idf(df, n, params)
    impacts = _impacts(idf[p_term], tf, doc_lens[p_doc], avgdl, params) + 0.0  # + 0.0: no -0.0 (kernel contract)
    return BM25Index(params, vocab, indptr, p_doc.astype(np.int32), impacts, doc_lens, avgdl, tf.astype(np.int32))


def raw_idf(df: np.ndarray, n: int, params: BM25Params) -> np.ndarray:
    """Unfloored idf per entry [m] float64; Okapi uses math.log per distinct df so values match rank-bm25's."""
    if params.variant == "lucene":
        return np.log(1.0 + (n - df + 0.5) / (df + 0.5))
    uniq, inv = np.unique(df, return_inverse=True)
    table = np.array([math.log(n - f + 0.5) - math.log(f + 0.5) for f in uniq.tolist()], dtype=np.float64)
    return table[inv.reshape(-1)]


def mean_idf(idf: np.ndarray, counts: np.ndarray) -> float:
    """Correctly rounded mean of the multiset {idf[i] repeated counts[i]}: equals math.fsum(all) / len(all)."""
    total = sum((Fraction(x) * c for x, c in zip(idf.tolist(), counts.tolist())), Fraction(0))
    return float(total) / int(np.sum(counts))


def floor_idf(idf: np.ndarray, mean: float, params: BM25Params) -> np.ndarray:
    """Okapi's floor: negative idfs become epsilon * mean idf (in place, returned); lucene idfs pass through."""
    if params.variant == "okapi":
        idf[idf < 0] = params.epsilon * mean
    return idf


def _idf(df: np.ndarray, n: int, params: BM25Params) -> np.ndarray:
    """Per-term idf [V] float64, floored over this index's own terms."""
    idf = raw_idf(df, n, params)
    if params.variant == "okapi" and len(idf):
        uniq, counts = np.unique(df, return_counts=True)  # the mean needs each distinct idf once, with its count
        floor_idf(idf, mean_idf(raw_idf(uniq, n, params), counts), params)
    return idf


def length_norms(dl: np.ndarray, avgdl: float, params: BM25Params) -> np.ndarray:
    """k1 * (1 - b + b * dl / avgdl) per entry [m] float64, in rank-bm25's operation order."""
    k1, b = params.k1, params.b
    return k1 * (1 - b + b * dl / avgdl)


def posting_impacts(idf: np.ndarray | float, tf: np.ndarray, norm: np.ndarray, params: BM25Params) -> np.ndarray:
    """Per-posting score contribution [m] float64 from `length_norms`, in rank-bm25's operation order."""
    if params.variant == "lucene":
        return idf * (tf / (tf + norm))
    return idf * (tf * (params.k1 + 1) / (tf + norm))


def _impacts(idf: np.ndarray, tf: np.ndarray, dl: np.ndarray, avgdl: float, params: BM25Params) -> np.ndarray:
    return posting_impacts(idf, tf, length_norms(dl, avgdl, params), params)


def load_bm25(directory: Path) -> BM25Index:
    """Load an index written by `BM25Index.save`, checking every array's dtype, shape and bounds."""
    directory = Path(directory)
    meta = _read_json(directory / "params.json")
    if not isinstance(meta, dict) or meta.get("format") != "adarag-bm25" or meta.get("version") not in _READS:
        raise IndexFormatError(f"{directory / 'params.json'}: not an adarag-bm25 index of format {list(_READS)} "
                               f"(got {str(meta)[:80]}); rebuild the index")
    try:
        params = BM25Params(**meta["params"])
        n_docs, n_terms, nnz, avgdl = int(meta["n_docs"]), int(meta["n_terms"]), int(meta["nnz"]), float(meta["avgdl"])
    except (KeyError, TypeError, ValueError) as e:
        raise IndexFormatError(f"{directory / 'params.json'}: bad field ({e}); rebuild the index") from e
    terms = _read_json(directory / "vocab.json")
    if not isinstance(terms, list) or len(terms) != n_terms:
        raise IndexFormatError(f"{directory / 'vocab.json'}: expected a list of {n_terms} strings; rebuild the index")
    try:  # a non-str entry (a foreign file) can only never match a query; checking each costs 30 ms a 100k
        vocab = dict(zip(terms, range(n_terms)))
    except TypeError:
        raise IndexFormatError(f"{directory / 'vocab.json'}: expected a list of {n_terms} strings; rebuild the index")
    if len(vocab) != n_terms:
        raise IndexFormatError(f"{directory / 'vocab.json'}: duplicate terms; rebuild the index")
    want = {"indptr": (np.int64, (n_terms + 1,)), "indices": (np.int32, (nnz,)),
            "impacts": (np.float64, (nnz,)), "doc_lens": (np.int64, (n_docs,))}
    if meta["version"] >= 2:
        want["tfs"] = (np.int32, (nnz,))
    arrs = load_arrays(directory, want)
    indptr, indices = arrs["indptr"], arrs["indices"]
    if indptr[0] != 0 or indptr[-1] != nnz or np.any(np.diff(indptr) < 0):
        raise IndexFormatError(f"{directory / 'indptr.npy'}: not a valid posting offset array; rebuild the index")
    if nnz and (int(indices.min()) < 0 or int(indices.max()) >= n_docs):
        raise IndexFormatError(f"{directory / 'indices.npy'}: doc ids outside [0, {n_docs}); rebuild the index")
    tfs = arrs.get("tfs")
    if tfs is not None and nnz and int(tfs.min()) < 1:
        raise IndexFormatError(f"{directory / 'tfs.npy'}: term frequencies below 1; rebuild the index")
    return BM25Index(params, vocab, indptr, indices, arrs["impacts"], arrs["doc_lens"], avgdl, tfs)


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexFormatError(f"{path}: cannot read ({e}); rebuild the index") from e
