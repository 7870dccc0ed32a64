"""indexers.ngram_segments: segments + deletions answer like one build_ngram over the live rows (and a naive scan)."""
from __future__ import annotations

import collections

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from indexers.errors import ConfigError
from indexers.ngram import SEP, NgramParams, build_ngram
from indexers.ngram_search import NgramSearchParams, query_ngrams, search
from indexers.ngram_segments import SegmentedNgram

P = NgramParams(occ_rate=64, sa_rate=2)


@st.composite
def segmented(draw):
    """Passages over a small alphabet (n-grams repeat; some empty), split into 1-4 segments, some rows deleted."""
    alphabet = draw(st.lists(st.sampled_from([0, 1, 2, 5, 151_935]), min_size=1, max_size=4, unique=True))
    passages = draw(st.lists(st.lists(st.sampled_from(alphabet), max_size=8), min_size=1, max_size=16))
    n_seg = draw(st.integers(1, min(4, len(passages))))
    cuts = sorted(draw(st.sets(st.integers(1, len(passages) - 1), min_size=n_seg - 1, max_size=n_seg - 1))
                  ) if n_seg > 1 else []
    live = np.array(draw(st.lists(st.booleans(), min_size=len(passages), max_size=len(passages))))
    if not live.any():
        live[draw(st.integers(0, len(passages) - 1))] = True  # build_ngram needs one live passage
    params = NgramParams(occ_rate=draw(st.sampled_from([64, 256])), sa_rate=draw(st.sampled_from([1, 2, 5])))
    bounds = [0, *cuts, len(passages)]
    segs = []
    for a, b in zip(bounds, bounds[1:]):
        lv = live[a:b]
        dead = [passages[r] for r in range(a, b) if not live[r]]
        draw(st.randoms()).shuffle(dead)  # the deleted-rows index need not keep row order
        segs.append((build_ngram(passages[a:b], params), build_ngram(dead, params) if dead else None,
                     None if lv.all() else lv))
    pats = [[]]
    for _ in range(draw(st.integers(1, 6))):
        p = passages[draw(st.integers(0, len(passages) - 1))]
        if p and draw(st.booleans()):
            i = draw(st.integers(0, len(p) - 1))
            pats.append(p[i:i + draw(st.integers(1, 4))])
        else:
            pats.append(draw(st.lists(st.sampled_from(alphabet + [3, 2**31]), min_size=1, max_size=4)))
    return passages, live, SegmentedNgram(segs), build_ngram([p for p, x in zip(passages, live) if x], params), pats


def naive(passages, live, pat):
    """Live (row, offset) occurrences of pat by a scan (the empty pattern: every offset 0..len)."""
    return [(r, o) for r, p in enumerate(passages) if live[r]
            for o in range(len(p) - len(pat) + 1) if p[o:o + len(pat)] == pat]


@settings(max_examples=200, deadline=None)
@given(data=segmented(), k=st.integers(0, 6), limit=st.sampled_from([0, 1, 3]))
def test_ops_equal_one_build_over_live_rows(data, k, limit):
    passages, live, sx, one, pats = data
    rows_of = np.flatnonzero(live)  # single-build row -> global row
    assert (sx.n_docs, sx.n_live, sx.n_tokens) == (len(passages), int(live.sum()), one.n_tokens)
    for pat in pats:
        want = naive(passages, live, pat)
        assert sx.count(pat) == one.count(pat) == len(want)
        rows, offs = sx.locate(pat)
        r1, o1 = one.locate(pat)
        np.testing.assert_array_equal(rows, rows_of[r1])
        np.testing.assert_array_equal(offs, o1)
        assert rows.dtype == offs.dtype == np.int64
        if pat:
            assert list(zip(rows.tolist(), offs.tolist())) == want
            lr, lo = sx.locate(pat, limit=limit)
            assert len(lr) == min(limit, len(want)) and set(zip(lr.tolist(), lo.tolist())) <= set(want)
            assert list(zip(lr.tolist(), lo.tolist())) == sorted(zip(lr.tolist(), lo.tolist()))
        t, c = sx.continuations(pat, k)
        t1, c1 = one.continuations(pat, k)
        np.testing.assert_array_equal(t, t1)
        np.testing.assert_array_equal(c, c1)
        nxt = collections.Counter(passages[r][o + len(pat)] for r, o in want if o + len(pat) < len(passages[r]))
        assert sorted(nxt.items(), key=lambda x: (-x[1], x[0]))[:k] == list(zip(t.tolist(), c.tolist()))
    for pat in pats:
        seq = [7, SEP] + pats[-1] + pat
        m, m1 = sx.longest_suffix_match(seq), one.longest_suffix_match(seq)
        assert (m.length, m.count) == (m1.length, m1.count)
        if m.length:
            assert live[m.row] and passages[m.row][m.offset:m.offset + m.length] == seq[len(seq) - m.length:]
        else:
            assert (m.row, m.offset) == (-1, -1)


@settings(max_examples=200, deadline=None)
@given(data=segmented(), q=st.lists(st.sampled_from([0, 1, 2, 3, 5, 151_935]), max_size=10),
       k=st.integers(1, 20), use_mask=st.booleans(), max_n=st.integers(1, 5), max_count=st.integers(1, 30),
       max_located=st.integers(1, 60), rnd=st.randoms())
def test_search_equals_one_build_over_live_rows(data, q, k, use_mask, max_n, max_count, max_located, rnd):
    passages, live, sx, one, _ = data
    rows_of = np.flatnonzero(live)
    p = NgramSearchParams(max_n=max_n, max_count=max_count, max_located=max_located)
    mask = np.array([rnd.random() < 0.7 for _ in passages]) if use_mask else None
    rows, scores = search(sx, q, k, p, mask)
    r1, s1 = search(one, q, k, p, None if mask is None else mask[live])
    np.testing.assert_array_equal(rows, rows_of[r1])
    assert scores.tobytes() == s1.tobytes()  # bitwise
    assert rows.dtype == np.int64 and scores.dtype == np.float64
    assert [(c.start, c.end, c.count) for c in query_ngrams(sx, q, p)] == [
        (c.start, c.end, c.count) for c in query_ngrams(one, q, p)]


def test_one_segment_without_deletions_is_the_index():
    passages = [[5, 6, 7, 5, 6], [], [6, 7, 8], [5, 6, 7], [9], [5, 6]]
    one = build_ngram(passages, P)
    sx = SegmentedNgram([(one, None, np.ones(len(passages), bool))])
    for pat in ([5], [5, 6], [6, 7], [9]):
        for limit in (None, 0, 1, 2):
            for a, b in zip(sx.locate(pat, limit), one.locate(pat, limit)):
                np.testing.assert_array_equal(a, b)
        assert sx.longest_suffix_match([1] + pat) == one.longest_suffix_match([1] + pat)


def test_whole_segment_deleted_and_bad_arguments():
    a, b = [[1, 2], [2, 3]], [[1, 2, 3], []]
    dead = SegmentedNgram([(build_ngram(a, P), build_ngram(a[::-1], P), np.zeros(2, bool)),
                           (build_ngram(b, P), None, None)])
    assert (dead.n_docs, dead.n_live, dead.n_tokens) == (4, 2, 3)
    assert dead.count([1, 2]) == 1 and dead.locate([2])[0].tolist() == [2]
    assert search(dead, [1, 2, 3], 10)[0].tolist() == [2]
    seg = build_ngram(a, P)
    with pytest.raises(ConfigError):
        SegmentedNgram([])
    with pytest.raises(ConfigError):  # rows deleted, no deleted-rows index
        SegmentedNgram([(seg, None, np.array([True, False]))])
    with pytest.raises(ConfigError):  # the deleted index holds other rows
        SegmentedNgram([(seg, build_ngram([[1, 2, 3]], P), np.array([True, False]))])
    with pytest.raises(ConfigError):  # a deleted index but nothing deleted
        SegmentedNgram([(seg, build_ngram([[1]], P), None)])
    with pytest.raises(ConfigError):
        SegmentedNgram([(seg, None, np.array([1, 1]))])
    with pytest.raises(ConfigError):
        SegmentedNgram([(seg, None, None), (build_ngram(b, NgramParams(tokenizer="other")), None, None)])
    with pytest.raises(ConfigError):
        dead.count("text")
    with pytest.raises(ConfigError):
        dead.continuations([1], -1)
    with pytest.raises(ConfigError):
        dead.locate([1], limit=-1)
