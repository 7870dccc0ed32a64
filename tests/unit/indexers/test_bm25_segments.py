"""indexers.bm25_segments: segments with deletions score bit-equal to build_bm25 over the live rows alone."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from indexers.bm25 import BM25Params, build_bm25, load_bm25
from indexers.bm25_segments import BM25Deleted, BM25Global, SegmentedBM25, global_stats, update_global
from indexers.errors import ConfigError, IndexFormatError

V1_BM25 = Path(__file__).resolve().parents[2] / "data" / "index-v1" / "bm25"

words = st.sampled_from(list("abcdefg")) | st.just("the")  # "the" everywhere: df > N/2, the idf floor triggers
docs = st.lists(words, max_size=8)  # empty docs included
queries = st.lists(words | st.just("zzz"), max_size=6)  # duplicates and unknown terms
params_st = st.builds(BM25Params, variant=st.sampled_from(["okapi", "lucene"]), k1=st.sampled_from([1.5, 0.9]),
                      b=st.sampled_from([0.75, 1.0]), epsilon=st.sampled_from([0.25, 0.0]))


@st.composite
def segmented(draw):
    """(corpus, segment bounds [S+1], deleted [N] bool) with 1-4 non-empty segments."""
    corpus = draw(st.lists(docs, min_size=1, max_size=30))
    n = len(corpus)
    cuts = draw(st.sets(st.integers(1, n - 1), max_size=3)) if n > 1 else set()
    deleted = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    return corpus, [0, *sorted(cuts), n], deleted


def _segments(corpus, bounds, deleted, params):
    out = []
    for a, b in zip(bounds, bounds[1:]):
        dead = deleted[a:b]
        gone = BM25Deleted.from_tokens([corpus[r] for r in range(a, b) if deleted[r]]) if dead.any() else None
        out.append((build_bm25(corpus[a:b], params), gone, ~dead if dead.any() else None))
    return out


def _expected(corpus, deleted, params, q, k, mask):
    """build_bm25 over the live rows, its full ranking mapped back to global rows, masked, cut to k."""
    live = np.flatnonzero(~deleted)
    if len(live) == 0:
        return np.empty(0, np.int64), np.empty(0)
    rows, scores = build_bm25([corpus[r] for r in live], params).search(q, len(live))
    rows = live[rows]
    keep = np.ones(len(rows), bool) if mask is None else mask[rows]
    return rows[keep][:k], scores[keep][:k]


@settings(max_examples=200, deadline=None)
@given(data=segmented(), params=params_st, qs=st.lists(queries, min_size=1, max_size=3), k=st.integers(1, 35),
       masked=st.booleans(), mask_bits=st.lists(st.booleans(), min_size=30, max_size=30))
def test_segments_equal_a_fresh_build_of_the_live_rows(data, params, qs, k, masked, mask_bits):
    corpus, bounds, deleted = data
    segs = _segments(corpus, bounds, deleted, params)
    stats = global_stats([(ix, d) for ix, d, _ in segs])
    index = SegmentedBM25(segs, stats, params)
    assert index.n_rows == len(corpus)
    mask = np.array(mask_bits[:len(corpus)], dtype=bool) if masked else None
    for q, (rows, scores) in zip(qs, index.search_batch(qs, k, mask)):
        want_rows, want_scores = _expected(corpus, deleted, params, q, k, mask)
        assert rows.dtype == np.int64 and scores.dtype == np.float64
        assert rows.tolist() == want_rows.tolist()
        assert scores.tolist() == want_scores.tolist()  # bitwise
        one_rows, one_scores = index.search(q, k, mask)
        assert one_rows.tolist() == rows.tolist() and one_scores.tolist() == scores.tolist()
    live_docs = [set(corpus[r]) for r in np.flatnonzero(~deleted)]
    for t in ("the", "a", "zzz"):
        assert index.df(t) == sum(t in d for d in live_docs)


@settings(max_examples=150, deadline=None)
@given(data=segmented(), batches=st.lists(st.integers(0, 3), min_size=30, max_size=30))
def test_incremental_stats_equal_stats_from_scratch(data, batches):
    """Append segments one by one, each time deleting a random batch of older live rows; then delete the rest."""
    corpus, bounds, _ = data
    params = BM25Params()
    indexes = [build_bm25(corpus[a:b], params) for a, b in zip(bounds, bounds[1:])]
    dead: list[list[int]] = [[] for _ in indexes]  # deleted local rows per segment
    stats = BM25Global(0, 0, {})
    for j in range(len(indexes) + 1):
        before = [(indexes[s], _deleted(corpus, bounds, s, dead[s])) for s in range(j)]
        newly = []
        for s in range(j):
            rows = [r for r in range(indexes[s].n_docs) if r not in dead[s] and batches[bounds[s] + r] == j % 4]
            dead[s] += rows
            newly.append(_deleted(corpus, bounds, s, rows))
        stats = update_global(stats, before, indexes[j] if j < len(indexes) else None, newly)
        now = [(indexes[s], _deleted(corpus, bounds, s, dead[s])) for s in range(min(j + 1, len(indexes)))]
        assert stats == global_stats(now)
        assert stats.mean_idf(params) == global_stats(now).mean_idf(params)


def _deleted(corpus, bounds, s, rows):
    return BM25Deleted.from_tokens([corpus[bounds[s] + r] for r in rows]) if rows else None


def test_global_idf_is_build_bm25s():
    corpus = [["the", "a"], ["the"], ["the", "b", "b"], []]
    ix = build_bm25(corpus)
    stats = global_stats([(ix, None)])
    assert stats.df_hist == {3: 1, 1: 2} and (stats.n_rows, stats.total_length) == (4, 6)
    for t, tf, row in (("the", 1, 1), ("b", 2, 2)):  # the impact of a posting / its tf part is the idf
        i = ix.vocab[t]
        s, e = ix.indptr[i], ix.indptr[i + 1]
        pos = s + ix.indices[s:e].tolist().index(row)
        norm = 1.5 * (1 - 0.75 + 0.75 * ix.doc_lens[row] / ix.avgdl)
        assert stats.idf(int(e - s), ix.params) * (tf * 2.5 / (tf + norm)) == ix.impacts[pos]
    assert stats.idf(3, ix.params) == 0.25 * stats.mean_idf(ix.params) > 0  # floored


def test_deleted_merge_save_load_round_trip(tmp_path):
    a = BM25Deleted.from_tokens([["x", "y", "x"], []])
    b = BM25Deleted.from_tokens([["y", "é"]])
    m = a.merge(b)
    assert m == BM25Deleted({"x": 1, "y": 2, "é": 1}, 3, 5)
    assert sorted(m.save(tmp_path)) == ["deleted.json", "df.npy", "terms.json"]
    assert BM25Deleted.load(tmp_path) == m
    g = BM25Global(7, 30, {1: 4, 3: 2})
    g.save(tmp_path / "global.json")
    assert BM25Global.load(tmp_path / "global.json") == g


@pytest.mark.parametrize("name,corrupt", [
    ("df.npy", lambda p: np.save(p, np.array([1, 0], np.int64))),  # a count of 0
    ("df.npy", lambda p: np.save(p, np.array([1, 9], np.int64))),  # more than the deleted rows
    ("df.npy", lambda p: p.unlink()),
    ("terms.json", lambda p: p.write_text('["x", "x"]')),
    ("deleted.json", lambda p: p.write_text('{"format": "adarag-bm25-deleted", "version": 1, "n_rows": -1}')),
    ("deleted.json", lambda p: p.write_text("{")),
])
def test_corrupt_deleted_is_refused(tmp_path, name, corrupt):
    BM25Deleted.from_tokens([["x", "y"], ["y"]]).save(tmp_path)
    corrupt(tmp_path / name)
    with pytest.raises(IndexFormatError, match=f"{name}.*rebuild"):
        BM25Deleted.load(tmp_path)


@pytest.mark.parametrize("body", ['{"format": "adarag-bm25-global", "version": 1, "n_rows": 2, "total_length": 3,'
                                  ' "df_hist": [[3, 1]]}',  # df above n_rows
                                  '{"format": "adarag-bm25-global", "version": 1, "n_rows": 2, "total_length": 3,'
                                  ' "df_hist": [[1, 1], [1, 2]]}',  # a df twice
                                  '{"format": "adarag-bm25-global", "version": 9}', "[]", ""])
def test_corrupt_global_is_refused(tmp_path, body):
    (tmp_path / "g.json").write_text(body)
    with pytest.raises(IndexFormatError, match="g.json.*rebuild"):
        BM25Global.load(tmp_path / "g.json")


def test_format_1_segment_searches_alone_and_only_alone():
    old = load_bm25(V1_BM25)
    assert old.tfs is None
    index = SegmentedBM25([(old, None, None)], global_stats([(old, None)]), old.params)
    qs = [list(old.vocab)[:4], list(old.vocab)[5:6] * 2]
    mask = np.arange(old.n_docs) % 2 == 0
    for q in qs:
        want_rows, want_scores = old.search(q, old.n_docs)
        rows, scores = index.search(q, 3)
        assert rows.tolist() == want_rows[:3].tolist() and scores.tolist() == want_scores[:3].tolist()
        rows, scores = index.search(q, 3, mask)
        keep = mask[want_rows]
        assert rows.tolist() == want_rows[keep][:3].tolist() and scores.tolist() == want_scores[keep][:3].tolist()
    new = build_bm25([["a"]])
    with pytest.raises(IndexFormatError, match="format 1.*alone"):
        SegmentedBM25([(old, None, None), (new, None, None)], global_stats([(old, None), (new, None)]))
    live = np.ones(old.n_docs, bool)
    live[0] = False
    gone = BM25Deleted.from_tokens([["x"] * int(old.doc_lens[0])])
    with pytest.raises(IndexFormatError, match="format 1.*rebuild"):
        SegmentedBM25([(old, gone, live)], BM25Global(old.n_docs - 1, 0, {}))


def test_bad_arguments_are_config_errors():
    ix = build_bm25([["a", "b"], ["b"], []])
    live = np.array([True, False, True])
    gone = BM25Deleted.from_tokens([["b"]])
    stats = global_stats([(ix, gone)])
    index = SegmentedBM25([(ix, gone, live)], stats)
    assert index.search(["b"], 5)[0].tolist() == [0] and index.df("b") == 1 and index.df("zzz") == 0
    with pytest.raises(ConfigError, match="recompute"):
        SegmentedBM25([(ix, gone, live)], global_stats([(ix, None)]))
    with pytest.raises(ConfigError, match="disagree"):
        SegmentedBM25([(ix, None, live)], stats)
    with pytest.raises(ConfigError, match="live mask"):
        SegmentedBM25([(ix, gone, live.astype(int))], stats)
    with pytest.raises(ConfigError, match="built with"):
        SegmentedBM25([(ix, gone, live)], stats, BM25Params(k1=1.2))
    for bad in (0, -1, True):
        with pytest.raises(ConfigError, match="k must"):
            index.search(["a"], bad)
    with pytest.raises(ConfigError, match="mask must"):
        index.search(["a"], 1, np.ones(4, bool))
    with pytest.raises(ConfigError, match="not a str"):
        index.search("a b", 1)
    with pytest.raises(ConfigError, match="per earlier segment"):
        update_global(stats, [(ix, gone)], None, [])
    with pytest.raises(ConfigError, match="live df"):
        update_global(stats, [(ix, gone)], None, [BM25Deleted.from_tokens([["b"], ["b"]])])  # 1 live "b" row


def test_all_rows_deleted_finds_nothing():
    ix = build_bm25([["a"], ["a", "b"]])
    gone = BM25Deleted.from_tokens([["a"], ["a", "b"]])
    index = SegmentedBM25([(ix, gone, np.zeros(2, bool))], global_stats([(ix, gone)]))
    assert [len(x) for x in index.search(["a", "b"], 3)] == [0, 0]
    assert index.search_batch([], 3) == [] and json.dumps(global_stats([(ix, gone)]).df_hist) == "{}"
