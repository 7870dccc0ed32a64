"""The bandit's context: cheap question signals and the question embedding, read from an opened RAG's index.

Cheap signals: length, question word, capitalised spans, digits, the best BM25 score and n-gram rarity in the
FM-index (no generator needed). The embedding is the index's dense query embedding.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["cheap_features", "raw_features"]

_QWORDS = ("what", "who", "which", "when", "where", "how")
_CAPS = re.compile(r"\b[A-Z][\w'-]*(?:\s+(?:of|the|de|and)?\s*[A-Z][\w'-]*)*")


def cheap_features(question: str, *, bm25_top: float = 0.0, ngram_rarity: float = 0.0) -> np.ndarray:
    """[11] float64: log length, question-word one-hot (6 + other), capitalised spans, has a digit, BM25, rarity."""
    words = question.split()
    first = words[0].lower() if words else ""
    qw = [float(first == w) for w in _QWORDS] + [float(first not in _QWORDS)]
    return np.array([np.log1p(len(words)), *qw, float(len(_CAPS.findall(question))),
                     float(any(c.isdigit() for c in question)), bm25_top, ngram_rarity])


def _rarity(rag: Any, question: str) -> float:
    """Share of the question's token trigrams absent from the corpus n-gram store (0 without one)."""
    ngram = getattr(rag.index, "ngram", None)
    if ngram is None:
        return 0.0
    ids = rag.index.ngram_tokens(question)
    grams = [ids[i:i + 3] for i in range(max(len(ids) - 2, 0))]
    return sum(ngram.count(g) == 0 for g in grams) / len(grams) if grams else 0.0


def raw_features(rag: Any, questions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(cheap [n, 11], embeddings [n, dim]) for questions, from an opened RAG's index (no generator needed)."""
    cheap = []
    for q in questions:
        hits = rag.retriever.search(q, "bm25", 1) if "bm25" in rag.index.stores else []
        cheap.append(cheap_features(q, bm25_top=hits[0].score if hits else 0.0, ngram_rarity=_rarity(rag, q)))
    emb = np.asarray(rag.index.embedder().embed_queries(list(questions)), dtype=np.float64)
    return np.stack(cheap), emb
