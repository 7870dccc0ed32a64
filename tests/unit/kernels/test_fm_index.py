"""kernels.fm_index: every operation against a naive scan of the text and against its plain `_reference` twin."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernels import fm_index as F

SEP = 2**32 - 1


def naive_positions(text: list[int], pat: list[int]) -> list[int]:
    m = len(pat)
    return [i for i in range(len(text) - m + 1) if text[i:i + m] == pat]


def naive_continuations(text: list[int], pat: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for i in naive_positions(text, pat):
        if i + len(pat) < len(text):
            out[text[i + len(pat)]] = out.get(text[i + len(pat)], 0) + 1
    return out


@st.composite
def text_and_patterns(draw):
    alphabet = draw(st.lists(st.sampled_from([0, 1, 2, 3, 7, 1000, 151_935, SEP]), min_size=1, max_size=5,
                             unique=True))
    base = draw(st.lists(st.sampled_from(alphabet), max_size=30))
    reps = draw(st.integers(1, 3))  # repeated text: long repeats, deep intervals
    text = base * reps
    pats = []
    for _ in range(draw(st.integers(1, 6))):
        if text and draw(st.booleans()):  # a substring (occurs), possibly extended past the end
            i = draw(st.integers(0, len(text) - 1))
            pats.append(text[i:i + draw(st.integers(0, len(text) + 2))])
        else:  # anything: empty, absent symbols, longer than the text
            pats.append(draw(st.lists(st.sampled_from(alphabet + [5, 2**31]), max_size=len(text) + 3)))
    sa_rate = draw(st.sampled_from([1, 2, 3, 16]))
    occ_rate = draw(st.sampled_from([64, 128, 256]))
    return text, pats, sa_rate, occ_rate


@settings(max_examples=150, deadline=None)
@given(data=text_and_patterns(), k=st.integers(0, 6), limit=st.sampled_from([None, 0, 1, 3]))
def test_ops_match_naive_scan_and_reference(data, k, limit):
    text, pats, sa_rate, occ_rate = data
    fm = F.build(text, sa_rate=sa_rate, occ_rate=occ_rate)
    ref = F.build_reference(text)
    assert fm.n == len(text)
    for pat in pats:
        pos = naive_positions(text, pat)
        assert F.count(fm, pat) == F.count_reference(ref, pat) == len(pos)
        assert F.interval(fm, pat) == F.interval_reference(ref, pat)
        assert sorted(F.locate(fm, pat).tolist()) == pos
        np.testing.assert_array_equal(F.locate(fm, pat, limit), F.locate_reference(ref, pat, limit))
        syms, cnts = F.continuations(fm, pat, k)
        rs, rc = F.continuations_reference(ref, pat, k)
        np.testing.assert_array_equal(syms, rs)
        np.testing.assert_array_equal(cnts, rc)
        want = sorted(naive_continuations(text, pat).items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        assert list(zip(syms.tolist(), cnts.tolist())) == want
        m = F.longest_suffix_match(fm, pat)
        assert m == F.longest_suffix_match_reference(ref, pat)
        best = max((n for n in range(len(pat) + 1) if naive_positions(text, pat[len(pat) - n:])), default=0)
        assert m.length == best
        if best:
            assert text[m.position:m.position + best] == pat[len(pat) - best:]
            assert m.count == len(naive_positions(text, pat[len(pat) - best:]))


@settings(max_examples=60, deadline=None)
@given(data=text_and_patterns())
def test_build_matches_reference_and_decodes(data):
    text, _, sa_rate, occ_rate = data
    fm, ref = F.build(text, sa_rate=sa_rate, occ_rate=occ_rate), F.build_reference(text)
    p = F.plain(fm)  # the fallback path: BWT from the wavelet matrix, SA by LF walks to samples
    np.testing.assert_array_equal(p.sa, ref.sa)
    np.testing.assert_array_equal(p.bwt, ref.bwt)
    np.testing.assert_array_equal(fm.C, ref.C)
    np.testing.assert_array_equal(fm.symbols, ref.symbols)


@settings(max_examples=60, deadline=None)
@given(data=text_and_patterns())
def test_extend_is_one_step_of_interval(data):
    text, pats, sa_rate, occ_rate = data
    fm = F.build(text, sa_rate=sa_rate, occ_rate=occ_rate)
    for pat in pats:
        sp, ep = 0, fm.n_rows
        for j, t in enumerate(pat):
            sp, ep = F.extend(fm, sp, ep, t)
            assert (sp, ep) == F.interval(fm, pat[: j + 1])


def test_separator_and_repeats_explicit():
    text = [5, 6, SEP, 5, 6, 7, SEP, 5, 6, SEP]
    fm = F.build(text, sa_rate=4, occ_rate=64)
    assert F.count(fm, [5, 6]) == 3
    assert sorted(F.locate(fm, [5, 6]).tolist()) == [0, 3, 7]
    assert F.count(fm, [6, SEP, 5]) == 1  # the kernel is plain string search: separators are symbols
    syms, cnts = F.continuations(fm, [5, 6], 5)
    assert syms.tolist() == [SEP, 7] and cnts.tolist() == [2, 1]
    assert F.count(fm, []) == len(text) + 1  # empty pattern: every position 0..n
    assert sorted(F.locate(fm, []).tolist()) == list(range(len(text) + 1))
    assert F.count(fm, text + [5]) == 0 and F.count(fm, text) == 1
    assert F.longest_suffix_match(fm, [1, 2, 5, 6, 7]) == (3, *F.interval(fm, [5, 6, 7]), 3)
    assert F.longest_suffix_match(fm, [9]).length == 0 and F.longest_suffix_match(fm, []).position == -1


def test_empty_text():
    fm = F.build([])
    assert fm.n == 0 and F.count(fm, []) == 1 and F.count(fm, [1]) == 0
    assert F.continuations(fm, [], 3)[0].tolist() == []


def test_long_text_matches_reference():
    rng = np.random.default_rng(0)
    text = rng.zipf(1.3, 20_000).clip(max=5000).astype(np.int64)
    fm = F.build(text, sa_rate=32, occ_rate=512)
    p = F.plain(fm)
    for i in rng.integers(0, len(text) - 8, 30):
        pat = text[i:i + int(rng.integers(1, 6))].tolist()
        assert F.count(fm, pat) == F.count_reference(p, pat)
        np.testing.assert_array_equal(F.locate(fm, pat, 50), F.locate_reference(p, pat, 50))
        for a, b in zip(F.continuations(fm, pat, 10), F.continuations_reference(p, pat, 10)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kw", [{"sa_rate": 0}, {"occ_rate": 100}, {"occ_rate": 32}])
def test_bad_rates(kw):
    with pytest.raises(ValueError):
        F.build([1, 2, 3], **kw)


def test_bad_text():
    with pytest.raises(ValueError):
        F.build([-1, 2])
    with pytest.raises(ValueError):
        F.build([[1, 2]])
