"""indexers.bm25: Okapi scores equal rank_bm25.BM25Okapi (last ulp aside where idf is floored, see
tests/support/okapi_oracle.py); search order; save/load round trip; format-1 folders still load."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from indexers.bm25 import BM25Params, build_bm25, load_bm25, mean_idf
from indexers.errors import ConfigError, CorpusError, IndexFormatError
from indexers.text import tokenize
from tests.support.indexers_bm25 import _check_against_rank_bm25, queries, words


@settings(max_examples=120, deadline=None)
@given(corpus=st.lists(st.lists(words, max_size=8), min_size=1, max_size=25).filter(lambda c: any(c)),
       qs=st.lists(queries, min_size=1, max_size=4), k=st.integers(1, 30),
       k1=st.sampled_from([1.5, 0.9, 2.0]), b=st.sampled_from([0.75, 0.4, 1.0]), eps=st.sampled_from([0.25, 0.0]))
def test_okapi_equals_rank_bm25(corpus, qs, k, k1, b, eps):
    _check_against_rank_bm25(corpus, qs, k, BM25Params(k1=k1, b=b, epsilon=eps))


def test_lucene_variant_formula():
    corpus = [["a", "b", "a"], ["b"], [], ["c", "a"]]
    index = build_bm25(corpus, BM25Params(variant="lucene", k1=1.2, b=0.75))
    ids, scores = index.search(["a"], 10)
    n, df, avgdl = 4, 2, 6 / 4
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
    expect = {d: idf * tf / (tf + 1.2 * (1 - 0.75 + 0.75 * dl / avgdl)) for d, tf, dl in [(0, 2, 3), (3, 1, 2)]}
    assert sorted(expect, key=lambda d: -expect[d]) == ids.tolist()
    np.testing.assert_allclose(scores, [expect[d] for d in ids.tolist()], rtol=1e-12)


def test_search_edges():
    index = build_bm25([["a", "b"], [], ["b", "b", "c"], ["a", "b"]])
    assert [len(x) for x in index.search([], 5)] == [0, 0]
    assert [len(x) for x in index.search(["nope"], 5)] == [0, 0]
    ids, _ = index.search(["a"], 100)  # k > matches: fewer back, unmatched doc 1 never appears
    assert ids.tolist() == [0, 3]
    assert index.search_batch([], 3) == []
    for bad in (0, -1):
        with pytest.raises(ConfigError):
            index.search(["a"], bad)
        with pytest.raises(ConfigError):
            index.search_batch([["a"]], bad)
    with pytest.raises(ConfigError):
        index.search("a b", 3)
    with pytest.raises(CorpusError):
        build_bm25([])
    with pytest.raises(ConfigError):
        BM25Params(variant="bm25+")


def test_save_load_round_trip(tmp_path):
    corpus = [tokenize(t) for t in ["the cat sat", "a dog and a cat", "", "dogs bark at cats", "zebra"]]
    index = build_bm25(corpus)
    names = index.save(tmp_path / "bm25")
    assert sorted(names) == sorted(["indptr.npy", "indices.npy", "impacts.npy", "doc_lens.npy", "tfs.npy",
                                    "vocab.json", "params.json"])
    assert sorted(p.name for p in (tmp_path / "bm25").iterdir()) == sorted(names)
    loaded = load_bm25(tmp_path / "bm25")
    assert loaded.params == index.params and loaded.vocab == index.vocab and loaded.avgdl == index.avgdl
    np.testing.assert_array_equal(loaded.tfs, index.tfs)
    qs = [tokenize(q) for q in ["cat", "dog cat cat", "zebra bark", "nothing"]]
    for (a_ids, a_s), (b_ids, b_s) in zip(index.search_batch(qs, 3), loaded.search_batch(qs, 3)):
        np.testing.assert_array_equal(a_ids, b_ids)
        np.testing.assert_array_equal(a_s, b_s)


@pytest.mark.parametrize("name,bad", [
    ("indices.npy", np.zeros(3, np.int64)),  # wrong dtype
    ("impacts.npy", np.zeros(1, np.float64)),  # wrong shape
    ("indptr.npy", None),  # missing
    ("tfs.npy", None),  # format 2 needs it
    ("tfs.npy", np.zeros(3, np.int32)),  # a tf of 0
])
def test_load_rejects_bad_arrays(tmp_path, name, bad):
    index = build_bm25([["a", "b"], ["b", "c"]])
    index.save(tmp_path)
    if bad is None:
        (tmp_path / name).unlink()
    else:
        np.save(tmp_path / name, bad)
    with pytest.raises(IndexFormatError, match=name):
        load_bm25(tmp_path)


def test_load_rejects_out_of_range_doc_ids(tmp_path):
    index = build_bm25([["a", "b"], ["b", "c"]])
    index.save(tmp_path)
    np.save(tmp_path / "indices.npy", np.full(len(index.indices), 7, np.int32))
    with pytest.raises(IndexFormatError, match="indices.npy"):
        load_bm25(tmp_path)


def test_tfs_are_term_frequencies():
    index = build_bm25([["a", "b", "a"], [], ["a"]])
    a = index.vocab["a"]
    s, e = index.indptr[a], index.indptr[a + 1]
    assert index.indices[s:e].tolist() == [0, 2] and index.tfs[s:e].tolist() == [2, 1]
    assert index.tfs.dtype == np.int32


def test_format_1_folder_loads_without_tfs(tmp_path):
    """tests/data/index-v1/bm25 was written by adarag 0.1.0; it searches as before and re-saves as format 1."""
    old = load_bm25(Path(__file__).resolve().parents[2] / "data" / "index-v1" / "bm25")
    assert old.tfs is None and old.n_docs == 6
    ids, scores = old.search(list(old.vocab)[:3], 4)
    assert len(ids) and np.all(np.diff(scores) <= 0)
    old.save(tmp_path)
    assert not (tmp_path / "tfs.npy").exists()
    assert json.loads((tmp_path / "params.json").read_text())["version"] == 1
    assert load_bm25(tmp_path).tfs is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-50, 50, allow_nan=False), min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_mean_idf_is_fsum_whatever_the_order(idf, rnd):
    counts = [rnd.randint(1, 4) for _ in idf]
    flat = [x for x, c in zip(idf, counts) for _ in range(c)]
    rnd.shuffle(flat)
    assert mean_idf(np.array(idf), np.array(counts)) == math.fsum(flat) / len(flat)
