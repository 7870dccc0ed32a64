"""Embedders: the hash embedder's properties, and the real bundled MiniLM models (fp32 torch and int8 ONNX)."""

from __future__ import annotations


import numpy as np
import pytest

from indexers.embedders import Embedder, HashEmbedder, load_embedder
from indexers.errors import ConfigError
from tests.support.indexers_embedders import EmbedderConformance, PASSAGES


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
