"""The dense store: L2-normalised passage embeddings searched by inner product in FAISS.

`IndexFlatIP` (exact) is the default; HNSW is an option for large corpora. The embeddings themselves are
kept as `embeddings.npy`, so a flat index is rebuilt in milliseconds on load and unchanged passages are
never re-embedded when documents are added. faiss-gpu is used for flat search when CUDA GPUs are visible.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from indexers.errors import ConfigError, IndexFormatError, missing

__all__ = ["DenseParams", "DenseIndex", "load_vectors"]

log = logging.getLogger(__name__)

_EMB = "embeddings.npy"
_HNSW = "hnsw.faiss"
_PARAMS = "params.json"


def _faiss():
    try:
        import faiss
    except ImportError as e:
        raise missing("dense", "faiss") from e
    return faiss


@dataclass(frozen=True)
class DenseParams:
    """How to embed and index: `embedder` is a model registry name (see indexers.models)."""

    embedder: str = "minilm"
    index: Literal["flat", "hnsw"] = "flat"
    hnsw_m: int = 32
    ef_construction: int = 40
    ef_search: int = 128
    use_gpu: bool = True

    def __post_init__(self) -> None:
        if self.index not in ("flat", "hnsw"):
            raise ConfigError(f"dense index must be 'flat' or 'hnsw', got {self.index!r}")
        if self.hnsw_m < 2 or self.ef_construction < 1 or self.ef_search < 1:
            raise ConfigError("hnsw_m must be >= 2 and ef_construction, ef_search >= 1")


class DenseIndex:
    """Holds the embedding matrix and the FAISS index built over it."""

    def __init__(self, vectors: np.ndarray, params: DenseParams, faiss_index=None) -> None:
        if vectors.ndim != 2:
            raise ConfigError(f"embeddings must be a 2-D array, got shape {vectors.shape}")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # [n, dim]
        self.params = params
        self.on_gpu = False
        self._index = faiss_index if faiss_index is not None else self._build()

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def _build(self):
        faiss = _faiss()
        if self.params.index == "hnsw":
            idx = faiss.IndexHNSWFlat(self.dim, self.params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            idx.hnsw.efConstruction = self.params.ef_construction
            idx.add(self.vectors)
        else:
            idx = faiss.IndexFlatIP(self.dim)
            idx.add(self.vectors)
            if self.params.use_gpu and hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0:
                log.info("dense: flat index on %d GPU(s)", faiss.get_num_gpus())
                idx = faiss.index_cpu_to_all_gpus(idx)
                self.on_gpu = True
        return idx

    def search(self, queries: np.ndarray, k: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows per query: (rows [n_q, k'] int64, scores [n_q, k'] float32), k' = min(k, n).

        With `mask` [n] bool only rows where it is True are ranked (k' = min(k, allowed rows)), by an exact
        inner product over those rows, ordered (score desc, row asc), whatever the index type."""
        if k < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)  # [n_q, dim]
        if q.shape[1] != self.dim:
            raise ConfigError(f"query embeddings have dim {q.shape[1]}, the index has {self.dim}")
        if mask is not None:
            return self._exact(q, k, np.flatnonzero(mask))
        if self.params.index != "hnsw" and not self.on_gpu:  # flat on the CPU: the exact kernel, ties by row
            return self._exact(q, k, None)
        kk = min(k, len(self))
        if kk == 0:
            return np.zeros((len(q), 0), np.int64), np.zeros((len(q), 0), np.float32)
        if self.params.index == "hnsw":
            self._index.hnsw.efSearch = max(self.params.ef_search, kk)
        scores, rows = self._index.search(q, kk)
        return rows.astype(np.int64), scores

    def _exact(self, q: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner-product top-k over the `allowed` rows (all when None), ties by row ascending even at
        the k-th place (a heap's top-k keeps an arbitrary one), so any split into segments merges the same."""
        vecs = self.vectors if allowed is None else self.vectors[allowed]
        n = len(vecs)
        kk = min(k, n)
        rows = np.empty((len(q), kk), np.int64)
        top = np.empty((len(q), kk), np.float32)
        for i in range(len(q)):
            s = vecs @ q[i]  # [n] float32; one matrix-vector product per query, so a batch == its queries alone
            cand = np.flatnonzero(s >= np.partition(s, n - kk)[n - kk]) if 0 < kk < n else np.arange(n)
            ids = cand if allowed is None else allowed[cand]
            order = np.lexsort((ids, -s[cand]))[:kk]
            rows[i], top[i] = ids[order], s[cand][order]
        return rows, top

    def save(self, directory: Path) -> list[str]:
        """Write `embeddings.npy`, `params.json` (and `hnsw.faiss` for HNSW); return the file names."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / _EMB, self.vectors, allow_pickle=False)
        (directory / _PARAMS).write_text(json.dumps(asdict(self.params), sort_keys=True), encoding="utf-8")
        names = [_EMB, _PARAMS]
        if self.params.index == "hnsw":
            _faiss().write_index(self._index, str(directory / _HNSW))
            names.append(_HNSW)
        return names

    @classmethod
    def load(cls, directory: Path, use_gpu: bool | None = None) -> "DenseIndex":
        directory = Path(directory)
        try:
            raw = json.loads((directory / _PARAMS).read_text(encoding="utf-8"))
            if use_gpu is not None:
                raw["use_gpu"] = use_gpu
            params = DenseParams(**raw)
            vectors = np.load(directory / _EMB, allow_pickle=False)
        except (OSError, ValueError, TypeError) as e:
            raise IndexFormatError(
                f"dense store in {directory} is unreadable ({e}); rebuild the index with `adarag index`"
            ) from e
        if vectors.ndim != 2 or vectors.dtype != np.float32:
            raise IndexFormatError(f"{directory / _EMB} has shape {vectors.shape} / dtype {vectors.dtype}, "
                                   "expected [n, dim] float32; rebuild the index with `adarag index`")
        faiss_index = None
        if params.index == "hnsw":
            try:
                faiss_index = _faiss().read_index(str(directory / _HNSW))
            except RuntimeError as e:  # FAISS reports a missing or malformed file as RuntimeError
                raise IndexFormatError(f"{directory / _HNSW} is unreadable ({str(e).splitlines()[-1]}); "
                                       "rebuild the index with `adarag index`") from e
            if faiss_index.ntotal != len(vectors):
                raise IndexFormatError(f"{directory / _HNSW} holds {faiss_index.ntotal} vectors, "
                                       f"{_EMB} {len(vectors)}; rebuild the index with `adarag index`")
        return cls(vectors, params, faiss_index)


def load_vectors(directory: Path) -> np.ndarray:
    """The embeddings [n, dim] float32 a dense store saved, memory-mapped (reuse them without building FAISS)."""
    return np.load(Path(directory) / _EMB, mmap_mode="r")
