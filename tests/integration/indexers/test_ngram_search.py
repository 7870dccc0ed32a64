"""indexers.ngram_search: SEAL-style n-gram retrieval on HotpotQA (real Qwen tokenizer) against BM25's recall@10."""
from __future__ import annotations

import collections
import json

import numpy as np
import pytest

from indexers.bm25 import build_bm25
from indexers.errors import ConfigError
from indexers.ngram import build_ngram, encode, ngram_text, ngram_tokenizer
from indexers.ngram_search import NgramSearchParams, query_ngrams, search
from indexers.text import tokenize

N_QUERIES = 150


@pytest.fixture(scope="module")
def hotpot(hotpot_dir):
    pytest.importorskip("transformers")
    docs = [json.loads(line) for line in open(hotpot_dir / "corpus.jsonl", encoding="utf-8")]
    row = {d["_id"]: i for i, d in enumerate(docs)}
    qs = [json.loads(line) for line in open(hotpot_dir / "queries.jsonl", encoding="utf-8")][:N_QUERIES]
    qrels = collections.defaultdict(set)
    for line in (hotpot_dir / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        q, d, _ = line.split("\t")
        qrels[q].add(row[d])
    tok = ngram_tokenizer()
    index = build_ngram(encode(tok, [ngram_text(d["text"], d["title"]) for d in docs]))
    return docs, qs, qrels, tok, index


def _recall(qs, qrels, ranked) -> float:
    hit = sum(len(set(r.tolist()) & qrels[q["_id"]]) for q, r in zip(qs, ranked))
    return hit / sum(len(qrels[q["_id"]]) for q in qs)


def test_recall_at_10_close_to_bm25(hotpot):
    docs, qs, qrels, tok, index = hotpot
    q_ids = encode(tok, [ngram_text(q["text"]) for q in qs])
    ngram = [search(index, t, 10)[0] for t in q_ids]
    bm = build_bm25([tokenize(d["title"] + " " + d["text"]) for d in docs])
    bm25 = [bm.search(tokenize(q["text"]), 10)[0] for q in qs]
    r_ngram, r_bm25 = _recall(qs, qrels, ngram), _recall(qs, qrels, bm25)
    print(f"HotpotQA recall@10 over {len(qs)} queries: ngram {r_ngram:.4f}, bm25 {r_bm25:.4f}")
    assert r_ngram >= 0.75 and r_ngram >= r_bm25 - 0.12


def test_ranking_contract(hotpot):
    _, qs, _, tok, index = hotpot
    t = encode(tok, [ngram_text(qs[0]["text"])])[0]
    rows, scores = search(index, t, 7)
    assert rows.dtype == np.int64 and scores.dtype == np.float64 and len(rows) == 7
    assert np.all(np.diff(scores) <= 0) and len(set(rows.tolist())) == 7
    assert search(index, [], 5)[0].size == 0
    assert search(index, [2**31], 5)[0].size == 0
    big = search(index, t, 10_000)[0]
    np.testing.assert_array_equal(big[:7], rows)
    for i, j, c, ivs in query_ngrams(index, t):
        (_, sp, ep, _, _), = ivs.parts
        assert c == index.count(t[i:j]) == ep - sp and c <= NgramSearchParams().max_count
    with pytest.raises(ConfigError):
        search(index, t, 0)
    with pytest.raises(ConfigError):
        search(index, "text", 3)
