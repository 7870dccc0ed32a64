"""The Probing-RAG controller (Baek et al. 2025): a linear probe on the generator's own hidden states decides
whether a question is answerable without retrieval, and when an iterative search may stop.

Features: the pooled hidden state (last token or mean) of one intermediate layer of the target LM on the
closed-book prompt (`rag.prompts.probe_messages`). Head: L2-regularised logistic regression with balanced class
weights (the `none` arm is rarely right, so positives are scarce). Training (`train_probe`) splits the cache's
train split again by id: the fit part picks the (layer, pooling, L2) by stratified cross-validated AUC and fits the
head; the calibration part sets the threshold that maximises mean MBA-RAG reward. A second head on the same layer
reads question + draft answer (label: that draft was correct) and decides the iterative stop. Saved in the
checksummed policy format of rag.controller with kind "probe".
"""
from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexers.errors import ConfigError
from rag.policy_base import Decision, check_mode, correct, read_policy_dir, reward, write_policy_dir
from rag.modes import MODE_NAMES
from rag.prompts import probe_messages

__all__ = ["DEFAULT_PROBE", "NEVER", "ProbeController", "ProbeHead", "ProbePolicy", "auc", "calibrate_threshold", "calibration_part",
           "fit_head", "load_probe", "save_probe", "select_head", "train_probe"]

log = logging.getLogger(__name__)

DEFAULT_PROBE = Path(__file__).parent / "policies" / "probe"
NEVER = 1.5  # a threshold above every probability: the probe never says "answerable"
POOLS = ("last", "mean")


@dataclass(frozen=True)
class ProbeHead:
    """Logistic regression on one layer's standardised pooled hidden state."""

    layer: int
    pool: str
    mean: np.ndarray  # [hidden]
    std: np.ndarray  # [hidden]
    w: np.ndarray  # [hidden]
    b: float

    def proba(self, H: np.ndarray) -> np.ndarray:  # H [n, hidden] -> [n]
        """P(label 1) for each row."""
        z = ((np.asarray(H, dtype=np.float64) - self.mean) / self.std) @ self.w + self.b
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def fit_head(H: np.ndarray, y: Sequence[int], *, layer: int = 0, pool: str = "last", l2: float = 1.0,
             iters: int = 25) -> ProbeHead:
    """Newton (IRLS) fit of an L2 logistic regression with balanced class weights on standardised features."""
    H = np.asarray(H, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if H.ndim != 2 or len(H) != len(y):
        raise ConfigError(f"H must be [n, hidden] with one label per row, got {H.shape} and {len(y)} labels")
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == len(y):
        raise ConfigError(f"the labels are all {int(y[0]) if len(y) else '?'} ({len(y)} rows): a probe needs both "
                          "classes; collect more questions with `adarag controller collect`")
    mean, std = H.mean(0), H.std(0)
    std[std < 1e-6] = 1.0
    X = np.hstack([(H - mean) / std, np.ones((len(H), 1))])  # [n, d + 1]
    cw = np.where(y == 1, len(y) / (2 * n_pos), len(y) / (2 * (len(y) - n_pos)))  # [n] balanced weights
    reg = np.full(X.shape[1], l2)
    reg[-1] = 0.0  # the bias is not shrunk
    theta = np.zeros(X.shape[1])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ theta, -40, 40)))
        grad = X.T @ (cw * (p - y)) + reg * theta
        hess = (X * (cw * p * (1 - p))[:, None]).T @ X + np.diag(reg + 1e-8)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return ProbeHead(layer, pool, mean, std, theta[:-1], float(theta[-1]))


def auc(scores: Sequence[float], y: Sequence[int]) -> float:
    """Area under the ROC curve (ties count one half); 0.5 when a class is missing."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(y).astype(bool)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return 0.5
    return float(((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum())
                 / (len(pos) * len(neg)))


def _folds(y: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Stratified folds: each class shuffled and dealt round-robin."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    for label in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == label))
        for j, i in enumerate(idx):
            folds[j % k].append(int(i))
    return [np.array(sorted(f)) for f in folds]


def select_head(features: dict[tuple[int, str], np.ndarray], y: Sequence[int], *, l2s: Sequence[float] = (1.0,),
                folds: int = 5, seed: int = 0) -> tuple[tuple[int, str], float, dict[str, float]]:
    """The (layer, pool) and L2 strength whose head has the best out-of-fold AUC (stratified k-fold, k <= positives);
    ties go to the first candidate. Returns them and every candidate's score ("layer/pool/l2" -> AUC)."""
    y = np.asarray(y).astype(int)
    k = min(folds, int(y.sum()), int(len(y) - y.sum()))
    if k < 2:
        raise ConfigError(f"need at least 2 examples of each class to choose a layer, got {int(y.sum())} positive "
                          f"of {len(y)}: collect more questions with `adarag controller collect`")
    scores: dict[str, float] = {}
    best, best_l2, best_score = None, l2s[0], -1.0
    for key, H in features.items():
        for l2 in l2s:
            oof = np.zeros(len(y))
            for val in _folds(y, k, seed):
                fit = np.setdiff1d(np.arange(len(y)), val)
                oof[val] = fit_head(H[fit], y[fit], l2=l2).proba(H[val])
            scores[f"{key[0]}/{key[1]}/{l2:g}"] = a = auc(oof, y)
            if a > best_score:
                best, best_l2, best_score = key, l2, a
    return best, best_l2, scores  # type: ignore[return-value]  # features is non-empty, so best is set


def calibrate_threshold(p: Sequence[float], gain_yes: Sequence[float], gain_no: Sequence[float]) -> float:
    """The threshold t maximising mean(gain_yes where p >= t else gain_no) over the candidates (every distinct p and
    NEVER); ties go to the highest t, the cautious side (say "yes" less often)."""
    p, gy, gn = (np.asarray(v, dtype=np.float64) for v in (p, gain_yes, gain_no))
    if not (len(p) == len(gy) == len(gn)) or len(p) == 0:
        raise ConfigError("calibrate_threshold needs equally long, non-empty p / gain_yes / gain_no")
    best_t, best_v = NEVER, float(gn.mean())
    for t in sorted(set(p.tolist()), reverse=True):
        v = float(np.where(p >= t, gy, gn).mean())
        if v > best_v + 1e-12:
            best_t, best_v = t, v
    return float(best_t)


@dataclass(frozen=True)
class ProbePolicy:
    """Two heads on one layer of `generator`: `head` (question -> answerable closed-book) and `stop` (question +
    draft -> draft correct), their thresholds, and the mode to run when the question needs retrieval."""

    head: ProbeHead
    threshold: float
    retrieve_mode: str
    generator: str
    stop: ProbeHead | None = None
    stop_threshold: float = NEVER
    lam: float = 0.1
    f1_threshold: float = 0.5
    meta: dict[str, Any] = field(default_factory=dict)

    def choose(self, p_answerable: float) -> str:
        return "none" if p_answerable >= self.threshold else self.retrieve_mode


def _labels(recs: Sequence[dict], arm: str, f1_threshold: float) -> np.ndarray:
    return np.array([int(correct(r["arms"][arm]["em"], r["arms"][arm]["f1"], f1_threshold=f1_threshold))
                     for r in recs])


def calibration_part(ids: Sequence[str], y: Sequence[int], share: float) -> np.ndarray:
    """[n] bool: the calibration part of the train ids, stratified by label (round(share * class size) of each
    class, first by a salted crc32 of the id) so scarce positives land in both parts."""
    y = np.asarray(y).astype(int)
    out = np.zeros(len(ids), dtype=bool)
    for label in (0, 1):
        idx = [i for i in np.flatnonzero(y == label)]
        idx.sort(key=lambda i: zlib.crc32(b"probe-calib:" + ids[i].encode("utf-8")))
        out[idx[: round(share * len(idx))]] = True
    return out


def train_probe(records: Sequence[dict], generator: Any, *, layers: Sequence[int] | None = None,
                pools: Sequence[str] = POOLS, retrieve_mode: str | None = None, lam: float = 0.1,
                f1_threshold: float = 0.5, calib_share: float = 0.3, l2s: Sequence[float] = (1.0, 10.0, 100.0, 1000.0),
                batch_size: int = 8,
                seed: int = 0) -> ProbePolicy:
    """Fit a probe on cached train outcomes (eval/collect.py lines) with a loaded `rag.generator.Generator`."""
    n_layers = int(generator.model.config.num_hidden_layers)
    layers = list(layers) if layers is not None else sorted({n_layers // 4, n_layers // 2, 3 * n_layers // 4,
                                                             n_layers})
    retrieval_arms = [a for a in MODE_NAMES if a != "none"]
    if retrieve_mode is None:  # the retrieval arm with the best mean reward on the train split
        retrieve_mode = max(retrieval_arms, key=lambda a: np.mean(
            [reward(bool(x), r["arms"][a]["retrieval_calls"], lam=lam)
             for x, r in zip(_labels(records, a, f1_threshold), records)]))
    elif retrieve_mode not in retrieval_arms:
        raise ConfigError(f"retrieve_mode must be one of {', '.join(retrieval_arms)}, got {retrieve_mode!r}")
    y = _labels(records, "none", f1_threshold)
    cal = calibration_part([r["id"] for r in records], y, calib_share)
    fit_recs = [r for r, c in zip(records, cal) if not c]
    cal_recs = [r for r, c in zip(records, cal) if c]
    if not cal_recs or not fit_recs:
        raise ConfigError(f"{len(records)} train questions leave an empty fit or calibration part: collect more")
    questions = [probe_messages(r["question"]) for r in records]
    states = generator.pooled_states(questions, layers, pools=pools, batch_size=batch_size)
    feats = {(layer, pool): H for pool in pools for layer, H in zip(layers, states[pool])}
    fit_idx, cal_idx = np.flatnonzero(~cal), np.flatnonzero(cal)
    (layer, pool), l2, cv = select_head({k: H[fit_idx] for k, H in feats.items()}, y[fit_idx], l2s=l2s, seed=seed)
    head = fit_head(feats[layer, pool][fit_idx], y[fit_idx], layer=layer, pool=pool, l2=l2)
    p_cal = head.proba(feats[layer, pool][cal_idx])
    gain = lambda recs, a: [reward(bool(c), r["arms"][a]["retrieval_calls"], lam=lam)
                            for c, r in zip(_labels(recs, a, f1_threshold), recs)]
    threshold = calibrate_threshold(p_cal, gain(cal_recs, "none"), gain(cal_recs, retrieve_mode))
    # The stop head: every arm's cached answer as the draft, label = that answer was correct.
    seen: set[tuple[str, str]] = set()  # arms often agree: one pair per distinct (question, draft)
    pairs = [(r, a) for r in records for a in MODE_NAMES if r["arms"][a]["prediction"].strip()
             and not ((r["id"], r["arms"][a]["prediction"].strip()) in seen
                      or seen.add((r["id"], r["arms"][a]["prediction"].strip())))]
    Hs = generator.hidden_states([probe_messages(r["question"], r["arms"][a]["prediction"]) for r, a in pairs],
                                 [layer], pool=pool, batch_size=batch_size)[0]
    ys = np.array([int(correct(r["arms"][a]["em"], r["arms"][a]["f1"], f1_threshold=f1_threshold)) for r, a in pairs])
    cal_ids = {r["id"] for r in cal_recs}
    is_cal = np.array([r["id"] in cal_ids for r, _ in pairs])
    stop, stop_threshold, stop_auc = None, NEVER, None
    if 0 < ys[~is_cal].sum() < (~is_cal).sum():
        stop = fit_head(Hs[~is_cal], ys[~is_cal], layer=layer, pool=pool, l2=l2)
        yc, pc = ys[is_cal], stop.proba(Hs[is_cal])
        n_pos, n_neg = max(int(yc.sum()), 1), max(int(len(yc) - yc.sum()), 1)
        # Balanced accuracy: stopping on a right draft gains 1/n_pos, on a wrong one loses 1/n_neg.
        stop_threshold = calibrate_threshold(pc, np.where(yc == 1, 1 / n_pos, -1 / n_neg), np.zeros(len(yc)))
        stop_auc = auc(pc, yc)
    meta = {"n_train": len(records), "n_fit": len(fit_recs), "n_calibration": len(cal_recs),
            "base_rate_none_correct": float(y.mean()), "positives_fit": int(y[fit_idx].sum()),
            "positives_calibration": int(y[cal_idx].sum()), "cv_auc": cv, "calibration_auc": auc(p_cal, y[cal_idx]),
            "stop_pairs": len(pairs), "stop_base_rate": float(ys.mean()), "stop_calibration_auc": stop_auc,
            "layers": layers, "pools": list(pools), "l2": l2}
    return ProbePolicy(head, threshold, retrieve_mode, generator.name, stop, stop_threshold, lam, f1_threshold, meta)


def _head_arrays(prefix: str, h: ProbeHead) -> dict[str, np.ndarray]:
    return {f"{prefix}_mean": h.mean, f"{prefix}_std": h.std, f"{prefix}_w": np.append(h.w, h.b)}


def _head(prefix: str, arrays: dict[str, np.ndarray], layer: int, pool: str) -> ProbeHead:
    wb = arrays[f"{prefix}_w"]
    return ProbeHead(layer, pool, arrays[f"{prefix}_mean"], arrays[f"{prefix}_std"], wb[:-1], float(wb[-1]))


def save_probe(pol: ProbePolicy, out: str | Path, *, meta: dict[str, Any] | None = None) -> Path:
    """Write a probe policy directory (rag.controller policy format, kind "probe")."""
    arrays = _head_arrays("head", pol.head) | (_head_arrays("stop", pol.stop) if pol.stop is not None else {})
    params = {"arms": list(MODE_NAMES), "generator": pol.generator, "layer": pol.head.layer, "pool": pol.head.pool,
              "threshold": pol.threshold, "stop_threshold": pol.stop_threshold, "has_stop": pol.stop is not None,
              "retrieve_mode": pol.retrieve_mode, "lam": pol.lam, "f1_threshold": pol.f1_threshold}
    return write_policy_dir(out, "probe", arrays, params, meta={**pol.meta, **(meta or {})})


def load_probe(path: str | Path) -> ProbePolicy:
    """Read and checksum-verify a probe policy directory written by `save_probe`."""
    m, arrays = read_policy_dir(path, ("probe",))
    head = _head("head", arrays, m["layer"], m["pool"])
    stop = _head("stop", arrays, m["layer"], m["pool"]) if m["has_stop"] else None
    return ProbePolicy(head, float(m["threshold"]), m["retrieve_mode"], m["generator"], stop,
                       float(m["stop_threshold"]), float(m["lam"]), float(m["f1_threshold"]), m.get("meta", {}))


class ProbeController:
    """Chooses none vs the policy's retrieval mode from the generator's hidden states; stops iterative early."""

    def __init__(self, policy: ProbePolicy, rag: Any) -> None:
        self.policy, self.rag = policy, rag

    @property
    def lam(self) -> float:
        return self.policy.lam

    def _generator(self) -> Any:
        gen = self.rag.generator
        hidden = int(gen.model.config.hidden_size)
        if hidden != len(self.policy.head.w):
            raise ConfigError(f"this probe reads {self.policy.generator!r} hidden states ({len(self.policy.head.w)}-d)"
                              f" but the generator {gen.name!r} has {hidden}: open RAG with generator="
                              f"{self.policy.generator!r}, or train a probe for it with `adarag controller train "
                              f"--kind probe --generator {gen.name}`")
        if gen.name != self.policy.generator:
            log.warning("probe trained on %r hidden states is reading %r's (same width): retrain it for this model",
                        self.policy.generator, gen.name)
        return gen

    def _p(self, head: ProbeHead, messages: Any) -> float:
        H = self._generator().hidden_states([messages], [head.layer], pool=head.pool)[0]
        return float(head.proba(H)[0])

    def choose(self, question: str) -> Decision:
        p = self._p(self.policy.head, probe_messages(question))
        return Decision(self.policy.choose(p), 1.0, {"p_answerable": p, "threshold": self.policy.threshold})

    def should_stop(self, question: str, draft: str) -> bool:
        """The iterative stop: the stop head thinks the draft is right (never, without a stop head)."""
        if self.policy.stop is None or not draft.strip():
            return False
        return self._p(self.policy.stop, probe_messages(question, draft)) >= self.policy.stop_threshold

    def update(self, question: str, mode: str, reward: float) -> None:
        """Feedback does not change a probe (it is trained offline from the cache); logged for the record."""
        check_mode(mode)
        log.info("probe controller: feedback reward %.2f for mode %s not learned online (retrain offline)",
                 reward, mode)
