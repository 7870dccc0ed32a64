"""The adaptive search controller: an MBA-RAG style contextual bandit over the four search modes.

Context: cheap question signals (length, question word, capitalised spans, digits, best BM25 score, n-gram
rarity in the FM-index) plus the question embedding reduced by PCA. Arms: rag.modes.MODE_NAMES. Reward
(MBA-RAG, Tang et al. 2025): correct -> 1 - lam * retrieval_calls, wrong -> -1. Policies are LinUCB or linear
Thompson sampling (ridge per arm), trained by replaying cached per-arm outcomes (eval/collect.py), evaluated
off-policy with inverse propensity scoring, and saved as a checksummed policy directory (JSON manifest + .npy).
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from indexers.errors import ConfigError, IndexFormatError, positive_int
from rag.modes import MODE_NAMES
from rag.policy_base import (
    DEFAULT_LAM,
    POLICY_FORMAT,
    POLICY_VERSION,
    Controller,
    Decision,
    check_mode,
    correct,
    read_policy_dir,
    reward,
    write_policy_dir,
)

__all__ = ["DEFAULT_POLICY", "POLICY_FORMAT", "POLICY_VERSION", "BanditController", "BanditPolicy", "Controller",
           "Decision", "cheap_features",
           "check_controller_spec", "correct", "cross_validate", "ips_value", "load_controller", "load_policy", "policy_kind", "read_policy_dir", "reward", "save_policy",
           "train_bandit", "write_policy_dir"]

_QWORDS = ("what", "who", "which", "when", "where", "how")
_CAPS = re.compile(r"\b[A-Z][\w'-]*(?:\s+(?:of|the|de|and)?\s*[A-Z][\w'-]*)*")


def cheap_features(question: str, *, bm25_top: float = 0.0, ngram_rarity: float = 0.0) -> np.ndarray:
    """[11] float64: log length, question-word one-hot (6 + other), capitalised spans, has a digit, BM25, rarity."""
    words = question.split()
    first = words[0].lower() if words else ""
    qw = [float(first == w) for w in _QWORDS] + [float(first not in _QWORDS)]
    return np.array([np.log1p(len(words)), *qw, float(len(_CAPS.findall(question))),
                     float(any(c.isdigit() for c in question)), bm25_top, ngram_rarity])


def _rarity(rag: Any, question: str) -> float:
    """Share of the question's token trigrams absent from the corpus n-gram store (0 without one)."""
    ngram = getattr(rag.index, "ngram", None)
    if ngram is None:
        return 0.0
    ids = rag.index.ngram_tokens(question)
    grams = [ids[i:i + 3] for i in range(max(len(ids) - 2, 0))]
    return sum(ngram.count(g) == 0 for g in grams) / len(grams) if grams else 0.0


def raw_features(rag: Any, questions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(cheap [n, 11], embeddings [n, dim]) for questions, from an opened RAG's index (no generator needed)."""
    cheap = []
    for q in questions:
        hits = rag.retriever.search(q, "bm25", 1) if "bm25" in rag.index.stores else []
        cheap.append(cheap_features(q, bm25_top=hits[0].score if hits else 0.0, ngram_rarity=_rarity(rag, q)))
    emb = np.asarray(rag.index.embedder().embed_queries(list(questions)), dtype=np.float64)
    return np.stack(cheap), emb


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


def _outcome_matrix(records: Sequence[dict], arms: Sequence[str], lam: float, f1_threshold: float) -> np.ndarray:
    """[n, arms] rewards of every arm on every cached question (the cache is full-information)."""
    return np.array([[reward(correct(r["arms"][a]["em"], r["arms"][a]["f1"], f1_threshold=f1_threshold),
                             r["arms"][a]["retrieval_calls"], lam=lam) for a in arms] for r in records])


def train_bandit(cheap: np.ndarray, emb: np.ndarray, records: Sequence[dict], *,
                 kind: Literal["linucb", "thompson"] = "linucb", arms: Sequence[str] = MODE_NAMES,
                 lam: float = 0.1, f1_threshold: float = 0.5, alpha: float = 0.5, ridge: float = 1.0,
                 pca_dims: int = 8, epochs: int = 5, seed: int = 0,
                 feedback: Literal["full", "bandit"] = "full") -> tuple[BanditPolicy, list[dict]]:
    """Fit the per-arm reward models from the cache. Each epoch visits the questions in a random order and logs
    the arm the (exploring) policy picks. `feedback="full"` (default): the cache holds every arm's outcome, so
    every arm learns from every question (one pass; each arm's bias is its mean reward). `"bandit"`: MBA-RAG's
    replay, where only the picked arm's reward is seen; with few questions and mostly negative rewards it can settle
    on whichever arm happened to look good early. Returns the policy and the log (id, arm, reward)."""
    if kind not in ("linucb", "thompson"):
        raise ConfigError(f"unknown bandit kind {kind!r}: use linucb or thompson")
    if feedback not in ("full", "bandit"):
        raise ConfigError(f"unknown feedback {feedback!r}: use full (every cached arm) or bandit (replay)")
    if len(records) < 2:
        raise ConfigError(f"need at least 2 cached questions to train, got {len(records)}: run `adarag controller "
                          "collect` on more questions")
    rng = np.random.default_rng(seed)
    centered = emb - emb.mean(0)
    p = min(pca_dims, min(centered.shape) - 1) if min(centered.shape) > 1 else 0
    pca = np.linalg.svd(centered, full_matrices=False)[2][:p].T if p > 0 else np.zeros((emb.shape[1], 0))
    raw = np.hstack([cheap, emb @ pca])
    mean, std = raw.mean(0), raw.std(0)
    std[std < 1e-9] = 1.0
    d = raw.shape[1] + 1
    pol = BanditPolicy(kind, tuple(arms), mean, std, pca, np.stack([ridge * np.eye(d)] * len(arms)),
                       np.zeros((len(arms), d)), alpha, lam, f1_threshold)
    X = pol.context(cheap, emb)
    R = _outcome_matrix(records, arms, lam, f1_threshold)
    log = []
    for _ in range(epochs if feedback == "bandit" else 1):
        for i in rng.permutation(len(records)):
            a = int(np.argmax(pol.scores(X[i], explore=True, rng=rng)))
            log.append({"id": records[i]["id"], "arm": arms[a], "reward": float(R[i, a])})
            for u in (range(len(arms)) if feedback == "full" else (a,)):
                pol.update(X[i], u, R[i, u])
    return pol, log


def cross_validate(cheap: np.ndarray, emb: np.ndarray, records: Sequence[dict], grid: Sequence[dict[str, Any]], *,
                   folds: int = 5, repeats: int = 3, seed: int = 0, **fixed: Any) -> list[dict[str, Any]]:
    """Each `train_bandit` parameter set in `grid` (e.g. {"ridge": 10, "pca_dims": 4}) scored by k-fold replay on
    `records` alone (call it on the train split only): mean reward and EM of the greedy pick on the left-out folds,
    averaged over `repeats` fold splits (one split's noise decides little). Best mean reward first (ties: the
    earlier set in `grid`)."""
    if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= len(records):
        raise ConfigError(f"folds must be an int in [2, {len(records)}] (the number of records), got {folds!r}")
    if not grid:
        raise ConfigError("grid is empty: pass at least one parameter set, e.g. [{'ridge': 1.0}]")
    positive_int(repeats, "repeats")
    lam, f1_threshold = fixed.get("lam", 0.1), fixed.get("f1_threshold", 0.5)
    rng = np.random.default_rng(seed)
    splits = [rng.permutation(len(records)) % folds for _ in range(repeats)]
    R = _outcome_matrix(records, fixed.get("arms", MODE_NAMES), lam, f1_threshold)
    em = np.array([[r["arms"][a]["em"] for a in fixed.get("arms", MODE_NAMES)] for r in records])
    rows = []
    idx = np.arange(len(records))
    for g, params in enumerate(grid):
        rewards, ems = [], []
        for fold in splits:
            picks = np.empty(len(records), dtype=int)
            for k in range(folds):
                tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
                pol, _ = train_bandit(cheap[tr], emb[tr], [records[i] for i in tr], seed=seed, **{**fixed, **params})
                X = pol.context(cheap[te], emb[te])
                picks[te] = [int(np.argmax(pol.scores(x, explore=False))) for x in X]
            rewards.append(R[idx, picks].mean())
            ems.append(em[idx, picks].mean())
        rows.append({"params": dict(params), "reward": float(np.mean(rewards)), "em": float(np.mean(ems)), "order": g})
    rows.sort(key=lambda r: (-r["reward"], r["order"]))
    return [{k: v for k, v in r.items() if k != "order"} for r in rows]


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
    """A Controller (rag.policy_base): a bandit policy, or one fixed mode, choosing the search mode per question.
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

    def choose(self, question: str) -> Decision:
        if self.policy is None:
            return Decision(self.fixed or "one_shot", 1.0, {})
        x = self._x(question)
        s = self.policy.scores(x, explore=self.explore)
        a = int(np.argmax(s))
        return Decision(self.policy.arms[a], self.policy.propensity(x, a, explore=self.explore),
                        dict(zip(self.policy.arms, map(float, s))))

    def update(self, question: str, mode: str, reward: float) -> None:
        """Online feedback: one ridge update of the chosen arm (a fixed-mode controller ignores it)."""
        check_mode(mode)
        if self.policy is None:
            return
        if mode not in self.policy.arms:
            raise ConfigError(f"unknown mode {mode!r}: use one of {', '.join(self.policy.arms)}")
        self.policy.update(self._x(question), self.policy.arms.index(mode), float(reward))


DEFAULT_POLICY = Path(__file__).parent / "policies" / "default"


def check_controller_spec(spec: object) -> str:
    """`spec` if `load_controller` can read it: auto, bandit, probe, a mode name or a policy directory (its
    manifest read, its files verified only at load); else a ConfigError (IndexFormatError for a folder that holds no
    policy) saying what to pass. Cheap: nothing is loaded."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"controller must be a non-empty str (auto, bandit, probe, a mode name or a policy "
                          f"directory), got {spec!r}")
    if spec in MODE_NAMES or spec in ("auto", "bandit", "probe"):
        return spec
    if Path(spec).is_dir():
        policy_kind(spec)
        return spec
    raise ConfigError(f"unknown controller {spec!r}: use auto, bandit, a mode ({', '.join(MODE_NAMES)}), probe or a "
                      "policy directory written by `adarag controller train`")


def load_controller(spec: str, *, rag: Any) -> Controller:
    """spec: a mode name (fixed), "bandit" / "probe" (the shipped policies) or a policy directory path."""
    check_controller_spec(spec)
    if spec in MODE_NAMES:
        return BanditController(None, rag, fixed=spec)
    if spec in ("bandit", "auto"):
        return BanditController(load_policy(DEFAULT_POLICY), rag)
    if spec == "probe" or policy_kind(spec) == "probe":
        from rag.probe import DEFAULT_PROBE, ProbeController, load_probe

        return ProbeController(load_probe(DEFAULT_PROBE if spec == "probe" else spec), rag)
    return BanditController(load_policy(spec), rag)


def policy_kind(path: str | Path) -> str:
    """The kind a policy directory's manifest names (linucb, thompson, probe), without verifying its files."""
    try:
        return str(json.loads((Path(path) / "manifest.json").read_text(encoding="utf-8")).get("kind"))
    except (OSError, ValueError) as e:
        raise IndexFormatError(f"{path} is not a policy directory ({e}): train one with `adarag controller "
                               "train --cache CACHE --out POLICY`") from e
