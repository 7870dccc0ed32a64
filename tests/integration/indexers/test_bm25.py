"""indexers.bm25: Okapi scores equal rank_bm25.BM25Okapi (last ulp aside where idf is floored, see
tests/support/okapi_oracle.py); search order; save/load round trip; format-1 folders still load."""
from __future__ import annotations

import json

import numpy as np
import pytest

from indexers.bm25 import BM25Params, build_bm25
from indexers.text import tokenize
from eval.shared import shared_data
from tests.prereq import require
from tests.support.indexers_bm25 import _check_against_rank_bm25

HOTPOT = shared_data("hotpotqa")


def _hotpotqa():
    require((HOTPOT / "corpus.jsonl").exists(), f"the shared HotpotQA data is not at {HOTPOT}: set ADARAG_SHARED")
    docs = [json.loads(line) for line in (HOTPOT / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    lines = (HOTPOT / "queries.jsonl").read_text(encoding="utf-8").splitlines()[:200]
    return [d["title"] + " " + d["text"] for d in docs], [json.loads(line)["text"] for line in lines]


def _wiki_summaries():
    from indexers.bundled import fanoutqa_leaf_questions, wiki_summaries

    return [d.title + " " + d.text for d in wiki_summaries()], [q.question for q in fanoutqa_leaf_questions()[:100]]


@pytest.mark.parametrize("load", [_hotpotqa, _wiki_summaries], ids=["hotpotqa", "bundled-wiki-summaries"])
def test_okapi_equals_rank_bm25_on_real_corpora(load):
    texts, queries = load()
    corpus = [tokenize(t) for t in texts]
    qs = [tokenize(q) for q in queries]
    _check_against_rank_bm25(corpus, qs, 10)


def test_lucene_equals_bm25s_on_hotpotqa():
    """The Lucene variant scores like bm25s' Lucene BM25 on the same tokens (bm25s sums float32, hence rtol)."""
    bm25s = pytest.importorskip("bm25s", reason="needs adarag[bench]")
    texts, queries = _hotpotqa()
    corpus = [tokenize(t) for t in texts]
    qs = [q for q in (tokenize(q) for q in queries[:50]) if q]
    index = build_bm25(corpus, BM25Params(variant="lucene"))
    vocab = {t: i for i, t in enumerate(dict.fromkeys(t for d in corpus for t in d))}
    sb = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    sb.index(bm25s.tokenization.Tokenized(ids=[[vocab[t] for t in d] for d in corpus], vocab=vocab),
             show_progress=False)
    for q, (ids, scores) in zip(qs, index.search_batch(qs, 10)):
        ref = sb.get_scores([t for t in q if t in vocab])
        np.testing.assert_allclose(scores, ref[ids], rtol=1e-5)
        assert scores[0] == pytest.approx(float(np.max(ref)), rel=1e-5)  # same best document score
