"""Speculative-decoding verification: greedy longest-prefix acceptance and the exact speculative sampling rule.

Sampling (Leviathan et al. 2023; Chen et al. 2023): draft token x_i ~ q_i is accepted with probability
min(1, p_i(x_i) / q_i(x_i)); at the first rejection the token is resampled from norm(max(0, p_i - q_i)); when all
k drafts pass, one bonus token is drawn from p_k. The emitted tokens are then distributed exactly as p. `p` and `q`
must be processed the same way (`warp_probs`: temperature, top-k, top-p). Uniform draws are arguments, so the fast
kernel and its plain `_reference` twin can be compared draw for draw; a draft with q(x) = 0 is rejected.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

__all__ = ["Verdict", "warp_probs", "warp_probs_reference", "verify_greedy", "verify_greedy_reference",
           "verify_sampling", "verify_sampling_reference", "sample_index"]


class Verdict(NamedTuple):
    """`accepted` draft tokens (0..k) were kept; `token` is the one emitted after them (correction or bonus)."""

    accepted: int
    token: int


def _check_warp(temperature: float, top_k: int, top_p: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 for sampling, got {temperature!r} (use greedy verification)")
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 0:
        raise ValueError(f"top_k must be an int >= 0 (0 = off), got {top_k!r}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")


def warp_probs(logits: np.ndarray, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> np.ndarray:
    """Rows of logits [n, V] -> probabilities [n, V] float64 after temperature, then top-k, then top-p (nucleus).

    top-k keeps the k largest logits (ties at the k-th value stay in); top-p keeps the smallest prefix of the
    descending-probability order whose mass reaches top_p (ties broken by token id ascending)."""
    _check_warp(temperature, top_k, top_p)
    x = np.atleast_2d(np.asarray(logits, dtype=np.float64)) / float(temperature)
    n, v = x.shape
    if top_k and top_k < v:
        kth = np.partition(x, v - top_k, axis=1)[:, v - top_k][:, None]
        x = np.where(x >= kth, x, -np.inf)
    x = x - x.max(axis=1, keepdims=True)
    p = np.exp(x)
    p /= p.sum(axis=1, keepdims=True)
    if top_p < 1.0:
        order = np.argsort(-p, axis=1, kind="stable")  # [n, V]: descending prob, id ascending on ties
        sp = np.take_along_axis(p, order, axis=1)
        before = np.zeros_like(sp)  # mass strictly before each sorted token (sequential sums, as the twin)
        np.cumsum(sp[:, :-1], axis=1, out=before[:, 1:])
        keep_sorted = before < top_p
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=1)
        p = np.where(keep, p, 0.0)
        p /= p.sum(axis=1, keepdims=True)
    return p


def warp_probs_reference(logits: Sequence[Sequence[float]], temperature: float = 1.0, top_k: int = 0,
                         top_p: float = 1.0) -> np.ndarray:
    """Plain twin of `warp_probs`: one row at a time with Python sorting."""
    _check_warp(temperature, top_k, top_p)
    rows = []
    for row in np.atleast_2d(np.asarray(logits, dtype=np.float64)):
        x = [float(v) / temperature for v in row]
        if top_k and top_k < len(x):
            kth = sorted(x, reverse=True)[top_k - 1]
            x = [v if v >= kth else -np.inf for v in x]
        m = max(x)
        e = [float(np.exp(v - m)) for v in x]
        s = sum(e)
        p = [v / s for v in e]
        if top_p < 1.0:
            mass, kept = 0.0, set()
            for i in sorted(range(len(p)), key=lambda j: (-p[j], j)):
                if mass >= top_p:
                    break
                kept.add(i)
                mass += p[i]
            p = [v if i in kept else 0.0 for i, v in enumerate(p)]
            s = sum(p)
            p = [v / s for v in p]
        rows.append(p)
    return np.array(rows, dtype=np.float64)


def sample_index(probs: np.ndarray, u: float) -> int:
    """Inverse-CDF draw from unnormalised non-negative weights [V] with a uniform u in [0, 1)."""
    c = np.cumsum(probs, dtype=np.float64)
    if not c[-1] > 0:
        raise ValueError("cannot sample from an all-zero distribution")
    return int(min(np.searchsorted(c, u * c[-1], side="right"), len(c) - 1))


def _check_draft(draft: Sequence[int], rows: int, what: str) -> np.ndarray:
    d = np.asarray(draft, dtype=np.int64).reshape(-1)
    if len(d) + 1 != rows:
        raise ValueError(f"{what} needs k + 1 = {len(d) + 1} target rows for {len(d)} draft tokens, got {rows}")
    return d


def verify_greedy(target_ids: Sequence[int] | np.ndarray, draft: Sequence[int] | np.ndarray) -> Verdict:
    """Greedy: keep the longest draft prefix equal to the target's argmax ids [k + 1]; emit the next argmax."""
    t = np.asarray(target_ids, dtype=np.int64).reshape(-1)
    d = _check_draft(draft, len(t), "verify_greedy")
    miss = np.flatnonzero(t[:-1] != d)
    n = int(miss[0]) if len(miss) else len(d)
    return Verdict(n, int(t[n]))


def verify_greedy_reference(target_ids: Sequence[int], draft: Sequence[int]) -> Verdict:
    t, d = [int(x) for x in target_ids], [int(x) for x in draft]
    if len(d) + 1 != len(t):
        raise ValueError(f"verify_greedy needs k + 1 = {len(d) + 1} target rows for {len(d)} draft tokens, got {len(t)}")
    n = 0
    while n < len(d) and d[n] == t[n]:
        n += 1
    return Verdict(n, t[n])


def verify_sampling(p: np.ndarray, q: np.ndarray, draft: Sequence[int] | np.ndarray, u_accept: np.ndarray,
                    u_sample: float) -> Verdict:
    """Speculative sampling over one draft path.

    p [k + 1, V]: target probabilities after each prefix (row k is the bonus row); q [k, V]: the draft's
    probabilities the drafts were drawn from (one-hot for a deterministic copy draft); u_accept [k] and u_sample:
    uniforms in [0, 1)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64).reshape(-1, p.shape[-1])
    d = _check_draft(draft, len(p), "verify_sampling")
    if len(q) != len(d) or len(np.asarray(u_accept).reshape(-1)) != len(d):
        raise ValueError(f"q and u_accept need one row per draft token ({len(d)}), got {len(q)} and "
                         f"{len(np.asarray(u_accept).reshape(-1))}")
    k = len(d)
    idx = np.arange(k)
    pd, qd = p[idx, d], q[idx, d]
    ratio = np.divide(pd, qd, out=np.zeros(k), where=qd > 0)
    miss = np.flatnonzero(~(np.asarray(u_accept, dtype=np.float64).reshape(-1) < ratio))
    n = int(miss[0]) if len(miss) else k
    if n == k:
        return Verdict(k, sample_index(p[k], u_sample))
    residual = np.maximum(p[n] - q[n], 0.0)
    return Verdict(n, sample_index(residual if residual.sum() > 0 else p[n], u_sample))


def verify_sampling_reference(p: Sequence[Sequence[float]], q: Sequence[Sequence[float]], draft: Sequence[int],
                              u_accept: Sequence[float], u_sample: float) -> Verdict:
    """Plain twin of `verify_sampling`: a Python loop over positions and a linear CDF walk."""
    p = [list(map(float, row)) for row in p]
    q = [list(map(float, row)) for row in q]
    d = [int(x) for x in draft]
    if len(d) + 1 != len(p) or len(q) != len(d) or len(list(u_accept)) != len(d):
        raise ValueError("verify_sampling needs k + 1 p rows and k q rows and uniforms for k draft tokens")

    def draw(weights: list[float]) -> int:
        total = 0.0
        for w in weights:
            total += w
        target, acc = u_sample * total, 0.0
        for i, w in enumerate(weights):
            acc += w
            if target < acc:
                return i
        return len(weights) - 1

    for i, x in enumerate(d):
        ratio = p[i][x] / q[i][x] if q[i][x] > 0 else 0.0
        if not u_accept[i] < ratio:
            residual = [max(a - b, 0.0) for a, b in zip(p[i], q[i])]
            return Verdict(i, draw(residual if sum(residual) > 0 else p[i]))
    return Verdict(len(d), draw(p[len(d)]))
