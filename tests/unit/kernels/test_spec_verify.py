"""kernels.spec_verify: twins agree draw for draw (hypothesis); emitted tokens follow the target p (chi-square)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy.stats import chisquare

from kernels import spec_verify as S

unit = st.floats(0.0, 1.0, exclude_max=True)


@st.composite
def logits_rows(draw):
    v = draw(st.integers(1, 12))
    n = draw(st.integers(1, 4))
    vals = st.one_of(st.floats(-30, 30), st.sampled_from([0.0, 1.0, -1.0]))  # sampled values make ties
    return np.array([[draw(vals) for _ in range(v)] for _ in range(n)])


@given(logits_rows(), st.floats(0.05, 5.0), st.integers(0, 14), st.floats(0.01, 1.0))
def test_warp_matches_reference(x, temperature, top_k, top_p):
    fast = S.warp_probs(x, temperature, top_k, top_p)
    ref = S.warp_probs_reference(x, temperature, top_k, top_p)
    assert fast.shape == x.shape
    np.testing.assert_allclose(fast, ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fast.sum(axis=1), 1.0)
    before_top_p = S.warp_probs(x, temperature, top_k)
    rows = np.arange(len(x))
    assert (before_top_p[rows, fast.argmax(axis=1)] == before_top_p.max(axis=1)).all()  # the mode survives top-p
    if top_k:  # nothing below the k-th largest tempered logit survives (top-k comes after temperature: dividing
        # can underflow two distinct tiny logits to one value, which then tie at the k-th place and both stay)
        z = x / temperature
        kth = -np.sort(-z, axis=1)[:, min(top_k, x.shape[1]) - 1][:, None]
        assert (before_top_p[z < kth] == 0).all()


def test_warp_top_k_and_top_p_cut_the_tail():
    p = S.warp_probs(np.log([[0.5, 0.3, 0.15, 0.05]]), 1.0, top_k=2)
    np.testing.assert_allclose(p, [[0.625, 0.375, 0, 0]])
    p = S.warp_probs(np.log([[0.5, 0.3, 0.15, 0.05]]), 1.0, top_p=0.79)
    np.testing.assert_allclose(p, [[0.625, 0.375, 0, 0]])  # 0.5 + 0.3 reaches 0.79: the rest goes
    p = S.warp_probs(np.log([[0.5, 0.3, 0.15, 0.05]]), 1.0, top_p=0.81)
    np.testing.assert_allclose(p, [[0.5, 0.3, 0.15, 0]] / np.float64(0.95))


@pytest.mark.parametrize("bad", [dict(temperature=0.0), dict(top_k=-1), dict(top_p=0.0), dict(top_p=1.5)])
def test_warp_rejects_bad_settings(bad):
    kw = dict(temperature=1.0, top_k=0, top_p=1.0) | bad
    with pytest.raises(ValueError):
        S.warp_probs(np.zeros((1, 3)), **kw)


@given(st.integers(0, 6), st.data())
def test_greedy_matches_reference(k, data):
    ids = st.integers(0, 3)  # a small alphabet: long matches and early misses both happen
    target = data.draw(st.lists(ids, min_size=k + 1, max_size=k + 1))
    draft = data.draw(st.lists(ids, min_size=k, max_size=k))
    v = S.verify_greedy(target, draft)
    assert v == S.verify_greedy_reference(target, draft)
    assert draft[: v.accepted] == target[: v.accepted] and v.token == target[v.accepted]
    assert v.accepted == k or draft[v.accepted] != target[v.accepted]


def test_greedy_exact_cases():
    assert S.verify_greedy([5, 6, 7, 8], [5, 6, 7]) == (3, 8)  # all accepted: the bonus token
    assert S.verify_greedy([5, 6, 7, 8], [5, 9, 7]) == (1, 6)  # first miss: the target's correction
    assert S.verify_greedy([5, 6, 7, 8], [4, 6, 7]) == (0, 5)
    assert S.verify_greedy([5], []) == (0, 5)  # no draft: plain decoding
    with pytest.raises(ValueError):
        S.verify_greedy([5, 6], [5, 6])


@given(st.data())
def test_sampling_matches_reference(data):
    k = data.draw(st.integers(0, 4))
    v = data.draw(st.integers(1, 8))
    def logits(rows):
        return np.array(data.draw(st.lists(st.lists(st.floats(-8, 8), min_size=v, max_size=v),
                                           min_size=rows, max_size=rows)))

    p = S.warp_probs(logits(k + 1), data.draw(st.floats(0.2, 3.0)), data.draw(st.integers(0, v)),
                     data.draw(st.floats(0.05, 1.0)))
    if data.draw(st.booleans()) or k == 0:  # a model draft: q from logits, drafts drawn from q
        q = S.warp_probs(logits(max(k, 1)))[:k]
        draft = [S.sample_index(row, data.draw(unit)) for row in q]
    else:  # a copy draft: arbitrary tokens, one-hot q (possibly a token p gives zero mass)
        draft = data.draw(st.lists(st.integers(0, v - 1), min_size=k, max_size=k))
        q = np.eye(v)[draft]
    u = data.draw(st.lists(unit, min_size=k, max_size=k))
    us = data.draw(unit)
    fast = S.verify_sampling(p, q.reshape(k, v), draft, np.array(u), us)
    assert fast == S.verify_sampling_reference(p, q.reshape(k, v), draft, u, us)
    assert 0 <= fast.accepted <= k and 0 <= fast.token < v
    assert p[fast.accepted, fast.token] > 0 or (fast.accepted < k and q[fast.accepted].sum() == 0)


def test_sampling_with_q_equal_p_always_accepts():
    rng = np.random.default_rng(0)
    p = S.warp_probs(rng.normal(size=(4, 6)))
    for _ in range(200):
        draft = [S.sample_index(p[i], rng.random()) for i in range(3)]
        assert S.verify_sampling(p, p[:3], draft, rng.random(3), rng.random()).accepted == 3


def _first_token_counts(p, q, draft_kind, n, seed, rule=S.verify_sampling):
    """Emitted first tokens over n independent speculative steps with k = len(q) drafts."""
    rng = np.random.default_rng(seed)
    k, v = q.shape
    counts = np.zeros(v, dtype=np.int64)
    for _ in range(n):
        if draft_kind == "model":
            draft = [S.sample_index(q[i], rng.random()) for i in range(k)]
            qq = q
        else:  # copy: a fixed, deterministic draft with a one-hot q
            draft = [int(np.argmax(q[i])) for i in range(k)]
            qq = np.eye(v)[draft]
        verdict = rule(p, qq, draft, rng.random(k), rng.random())
        counts[draft[0] if verdict.accepted > 0 else verdict.token] += 1
    return counts


P_LOGITS = np.array([[2.0, 1.0, 0.5, 0.0, -1.0, 1.5]] * 3)
Q_LOGITS = np.array([[0.0, 2.0, 0.0, 1.0, 0.5, -0.5], [1.0, 0.0, 0.0, 0.0, 2.0, 0.0]])


@pytest.mark.parametrize("warp", [dict(), dict(temperature=0.7), dict(top_k=4), dict(top_p=0.85),
                                  dict(temperature=1.3, top_k=5, top_p=0.9)])
@pytest.mark.parametrize("draft_kind", ["model", "copy"])
def test_emitted_tokens_follow_p(warp, draft_kind):
    p = S.warp_probs(P_LOGITS, **warp)
    q = S.warp_probs(Q_LOGITS, **warp)
    n = 20_000
    counts = _first_token_counts(p, q, draft_kind, n, seed=1234)
    support = p[0] > 0
    assert counts[~support].sum() == 0  # top-k / top-p cut tokens never appear
    assert chisquare(counts[support], n * p[0][support]).pvalue > 1e-3


def test_chi_square_catches_a_wrong_rule():
    """Power check: resampling from p instead of norm(max(0, p - q)) after a rejection biases the output."""

    def wrong(p, q, draft, u, us):
        v = S.verify_sampling(p, q, draft, u, us)
        return v if v.accepted == len(draft) else S.Verdict(v.accepted, S.sample_index(p[v.accepted], us))

    p, q = S.warp_probs(P_LOGITS), S.warp_probs(Q_LOGITS)
    n = 20_000
    counts = _first_token_counts(p, q, "model", n, seed=1234, rule=wrong)
    assert chisquare(counts, n * p[0]).pvalue < 1e-6


def test_two_token_sequences_follow_a_markov_target():
    """A whole speculative loop over a Markov chain (p and q depend on the previous token): the joint law of the
    first two emitted tokens equals the target chain's, bonus tokens and corrections included."""
    rng = np.random.default_rng(7)
    v = 4
    tp = S.warp_probs(rng.normal(size=(v, v)) * 1.5)  # tp[a] = p(next | prev = a)
    tq = S.warp_probs(rng.normal(size=(v, v)) * 1.5)
    start = 0
    n, k = 20_000, 2
    counts = np.zeros((v, v), dtype=np.int64)
    for _ in range(n):
        out, prev = [], start
        while len(out) < 2:
            draft, ctx = [], prev
            for _ in range(k):
                ctx = S.sample_index(tq[ctx], rng.random())
                draft.append(ctx)
            ctxs = [prev] + draft
            verdict = S.verify_sampling(tp[ctxs], tq[ctxs[:-1]], draft, rng.random(k), rng.random())
            out += draft[: verdict.accepted] + [verdict.token]
            prev = out[-1]
        counts[out[0], out[1]] += 1
    expected = tp[start][:, None] * tp  # P(a, b) = p(a | start) p(b | a)
    assert chisquare(counts.ravel(), n * expected.ravel()).pvalue > 1e-3
