"""indexers.stores.ngram against SEAL scoring over n-gram counts found by a naive scan of the token lists."""
from __future__ import annotations

import math

import numpy as np

from indexers.ngram import NgramParams, encode, ngram_text
from indexers.ngram_search import NgramSearchParams
from indexers.stores.ngram import NgramStore
from tests.support.store_conformance import PASSAGES, StoreConformance, WordTokenizer


def _occurrences(doc: list[int], gram: list[int]) -> int:
    m = len(gram)
    return sum(doc[i:i + m] == gram for i in range(len(doc) - m + 1))


def naive_seal(docs: list[list[int]], q: list[int], p: NgramSearchParams = NgramSearchParams()) -> dict[int, float]:
    """Row -> score, following indexers.ngram_search's definition with every count taken by a naive scan."""
    q = q[: p.max_query_tokens]
    found = {}
    for i in range(len(q)):
        for j in range(i + 1, min(len(q), i + p.max_n) + 1):
            c = sum(_occurrences(d, q[i:j]) for d in docs)
            if c == 0:
                break
            found[(i, j)] = c
    cands = [(i, j, c) for (i, j), c in found.items()
             if c <= p.max_count and found.get((i, j + 1)) != c and found.get((i - 1, j)) != c]
    cands.sort(key=lambda g: (g[2], -(g[1] - g[0]), g[0]))
    total, budget = max(2, sum(map(len, docs))), p.max_located
    per_doc: dict[int, list] = {}
    for i, j, c in cands:
        if c > budget:
            continue
        budget -= c
        w = math.log(max(total - c, 1) / c)
        if w > 0:
            for r, d in enumerate(docs):
                if _occurrences(d, q[i:j]):
                    per_doc.setdefault(r, []).append((w, i, j))
    out = {}
    for r, grams in per_doc.items():
        covered, s = set(), 0.0
        for w, i, j in sorted(grams, key=lambda g: (-g[0], g[1], g[2])):
            new = len(set(range(i, j)) - covered)
            s += w ** p.alpha * (1 - p.beta + p.beta * new / (j - i))
            covered |= set(range(i, j))
        out[r] = s
    return out


class TestNgramStore(StoreConformance):
    kind = NgramStore
    params = NgramParams(occ_rate=64, sa_rate=2)

    def reference(self, query, passages):
        tok = WordTokenizer()
        docs = encode(tok, [ngram_text(p.text, p.title) for p in passages])
        scores = naive_seal(docs, encode(tok, [ngram_text(query)])[0])
        rows = np.array(sorted(scores, key=lambda r: (-scores[r], r)), np.int64)
        return rows, np.array([scores[r] for r in rows.tolist()], np.float64)

    def test_stats_count_rows_and_tokens(self, store):
        tok = WordTokenizer()
        n_tokens = sum(map(len, encode(tok, [ngram_text(p.text, p.title) for p in PASSAGES])))
        assert (store.stats().n_rows, store.stats().total_length) == (len(PASSAGES), n_tokens)
