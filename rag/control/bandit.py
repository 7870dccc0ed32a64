"""The MBA-RAG contextual bandit over the four search modes: the policy, its controller, its files.

Context: rag.control.features (cheap question signals + the question embedding reduced by PCA). Arms:
rag.modes.MODE_NAMES. Reward (MBA-RAG, Tang et al. 2025): correct -> 1 - lam * retrieval_calls, wrong -> -1.
Policies are LinUCB or linear Thompson sampling (ridge per arm), trained in rag.control.train, evaluated
off-policy with inverse propensity scoring, and saved as a checksummed policy directory (rag.control.base).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from indexers.errors import ConfigError, IndexFormatError
from rag.control.base import (DEFAULT_LAM, Budget, Decision, best_fitting, check_mode, read_policy_dir,
                               write_policy_dir)
from rag.control.features import raw_features

__all__ = ["BanditController", "BanditPolicy", "ips_value", "load_policy", "save_policy"]


@dataclass
class BanditPolicy:
    """Per-arm ridge models over standardised features. Holds state: `A` [arms, d, d], `b` [arms, d]."""

    kind: Literal["linucb", "thompson"]
    arms: tuple[str, ...]
    mean: np.ndarray  # [d_raw] feature means
    std: np.ndarray  # [d_raw]
    pca: np.ndarray  # [dim, p] embedding projection
    A: np.ndarray
    b: np.ndarray
    alpha: float = 0.5  # LinUCB width / Thompson posterior scale
    lam: float = 0.1
    f1_threshold: float = 0.5

    def context(self, cheap: np.ndarray, emb: np.ndarray) -> np.ndarray:
        """[n, d] design rows: bias, standardised cheap features, PCA'd embedding."""
        z = (np.hstack([cheap, emb @ self.pca]) - self.mean) / self.std
        return np.hstack([np.ones((len(z), 1)), z])

    def scores(self, x: np.ndarray, *, explore: bool, rng: np.random.Generator | None = None) -> np.ndarray:
        """[arms] expected reward (explore=False), else UCB or a Thompson draw."""
        out = np.empty(len(self.arms))
        for a in range(len(self.arms)):
            inv = np.linalg.inv(self.A[a])
            theta = inv @ self.b[a]
            if not explore:
                out[a] = x @ theta
            elif self.kind == "linucb":
                out[a] = x @ theta + self.alpha * np.sqrt(x @ inv @ x)
            else:
                rng = rng or np.random.default_rng()
                out[a] = x @ rng.multivariate_normal(theta, self.alpha ** 2 * inv, method="cholesky")
        return out

    def propensity(self, x: np.ndarray, arm: int, *, explore: bool, draws: int = 200, seed: int = 0) -> float:
        """P(policy picks `arm` | x): 1/0 for greedy and LinUCB, Monte Carlo over posterior draws for Thompson."""
        if not explore or self.kind == "linucb":
            return float(np.argmax(self.scores(x, explore=explore)) == arm)
        rng = np.random.default_rng(seed)
        wins = sum(np.argmax(self.scores(x, explore=True, rng=rng)) == arm for _ in range(draws))
        return max(wins / draws, 1.0 / draws)

    def update(self, x: np.ndarray, arm: int, r: float) -> None:
        self.A[arm] += np.outer(x, x)
        self.b[arm] += r * x


def ips_value(choices: Sequence[int], logged_arms: Sequence[int], propensities: Sequence[float],
              rewards: Sequence[float]) -> float:
    """Inverse-propensity estimate of a policy's mean reward from logged (arm, propensity, reward) triples."""
    c, la, p, r = (np.asarray(v, dtype=np.float64) for v in (choices, logged_arms, propensities, rewards))
    if np.any(p <= 0):
        raise ConfigError("propensities must be > 0 for inverse propensity scoring")
    return float(np.mean((c == la) * r / p))


_ARRAYS = ("mean", "std", "pca", "A", "b")


def save_policy(pol: BanditPolicy, out: str | Path, *, meta: dict[str, Any] | None = None) -> Path:
    """Write a bandit policy directory (see `write_policy_dir`)."""
    return write_policy_dir(out, pol.kind, {name: getattr(pol, name) for name in _ARRAYS},
                            {"arms": list(pol.arms), "alpha": pol.alpha, "lam": pol.lam,
                             "f1_threshold": pol.f1_threshold}, meta=meta)


def load_policy(path: str | Path) -> BanditPolicy:
    """Read and checksum-verify a bandit policy directory written by `save_policy`."""
    m, arrays = read_policy_dir(path, ("linucb", "thompson"))
    lost = [name for name in _ARRAYS if name not in arrays]
    if lost:
        raise IndexFormatError(f"{path} lacks {', '.join(lost)}: retrain with `adarag controller train`")
    return BanditPolicy(m["kind"], tuple(m["arms"]), alpha=m["alpha"], lam=m["lam"],
                        f1_threshold=m["f1_threshold"], **{k: arrays[k] for k in _ARRAYS})


class BanditController:
    """A Controller (rag.control.base): a bandit policy, or one fixed mode, choosing the search mode per question.
    Holds the policy and the RAG whose index supplies features; it never ends iterative retrieval early."""

    def __init__(self, policy: BanditPolicy | None, rag: Any, *, fixed: str | None = None,
                 explore: bool = False) -> None:
        self.policy, self.rag, self.fixed, self.explore = policy, rag, fixed, explore

    @property
    def lam(self) -> float:
        return self.policy.lam if self.policy is not None else DEFAULT_LAM

    def should_stop(self, question: str, draft: str) -> bool:
        return False

    def _x(self, question: str) -> np.ndarray:
        cheap, emb = raw_features(self.rag, [question])
        return self.policy.context(cheap, emb)[0]

    def choose(self, question: str, budget: Budget | None = None) -> Decision:
        if self.policy is None:
            mode = self.fixed or "one_shot"
            return Decision(mode if budget is None or budget.fits(mode) else "none", 1.0, {})
        x = self._x(question)
        s = self.policy.scores(x, explore=self.explore)
        scores = dict(zip(self.policy.arms, map(float, s)))
        a = int(np.argmax(s))
        if budget is not None and not budget.fits(self.policy.arms[a]):  # the best arm the budget allows
            return Decision(best_fitting(scores, budget), 1.0, scores)
        return Decision(self.policy.arms[a], self.policy.propensity(x, a, explore=self.explore), scores)

    def update(self, question: str, mode: str, reward: float) -> None:
        """Online feedback: one ridge update of the chosen arm (a fixed-mode controller ignores it)."""
        check_mode(mode)
        if self.policy is None:
            return
        if mode not in self.policy.arms:
            raise ConfigError(f"unknown mode {mode!r}: use one of {', '.join(self.policy.arms)}")
        self.policy.update(self._x(question), self.policy.arms.index(mode), float(reward))


