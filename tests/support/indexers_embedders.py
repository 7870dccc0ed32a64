"""Helpers shared by tests/unit/indexers/test_embedders.py and tests/integration/indexers/test_embedders.py."""
from __future__ import annotations

import numpy as np
import pytest
from indexers.embedders import Embedder
from indexers.embedders import Embedder


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
