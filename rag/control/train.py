"""Offline learning of the controllers from a collect cache (every arm's outcome on every question,
eval/collect.py): the bandit's ridge models with cross-validated settings, and the probe's heads and thresholds.

Training (`train_probe`) splits the cache's train split again by id: the fit part picks the (layer, pooling, L2)
by stratified cross-validated AUC and fits the head; the calibration part sets the threshold that maximises mean
MBA-RAG reward. Inference lives in rag.control.bandit and rag.control.probe; nothing there imports this file.
"""
from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from indexers.errors import ConfigError, positive_int
from rag.control.bandit import BanditPolicy, save_policy
from rag.control.classifier import CLASSES, ClassifierPolicy, save_classifier
from rag.control.base import correct, reward
from rag.control.features import raw_features
from rag.control.probe import NEVER, POOLS, ProbeHead, ProbePolicy, save_probe
from rag.modes import MODE_NAMES
from rag.prompts import probe_messages

__all__ = ["CV_GRID", "auc", "calibrate_threshold", "calibration_part", "complexity_labels", "cross_validate",
           "feature_scaling", "fit_head", "index_features", "train_classifier", "outcome_matrix", "select_head",
           "train_bandit", "train_policy", "train_probe"]

CV_GRID: tuple[dict[str, Any], ...] = tuple(
    {"ridge": r, "pca_dims": p} for r in (1.0, 3.0, 10.0, 30.0, 100.0) for p in (0, 4, 8, 16))
"""`train --cv`: ridge strength x embedding PCA dims, chosen by 5-fold replay on the train split."""


def outcome_matrix(records: Sequence[dict], arms: Sequence[str], lam: float, f1_threshold: float) -> np.ndarray:
    """[n, arms] rewards of every arm on every cached question (the cache is full-information)."""
    return np.array([[reward(correct(r["arms"][a]["em"], r["arms"][a]["f1"], f1_threshold=f1_threshold),
                             r["arms"][a]["retrieval_calls"], lam=lam) for a in arms] for r in records])


def feature_scaling(cheap: np.ndarray, emb: np.ndarray, pca_dims: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pca [dim, p], mean, std) of the controllers' design: cheap features + the embedding's top `pca_dims`
    principal directions (fewer with few questions), standardised (a constant column keeps std 1)."""
    centered = emb - emb.mean(0)
    p = min(pca_dims, min(centered.shape) - 1) if min(centered.shape) > 1 else 0
    pca = np.linalg.svd(centered, full_matrices=False)[2][:p].T if p > 0 else np.zeros((emb.shape[1], 0))
    raw = np.hstack([cheap, emb @ pca])
    mean, std = raw.mean(0), raw.std(0)
    std[std < 1e-9] = 1.0
    return pca, mean, std


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
    pca, mean, std = feature_scaling(cheap, emb, pca_dims)
    d = len(mean) + 1
    pol = BanditPolicy(kind, tuple(arms), mean, std, pca, np.stack([ridge * np.eye(d)] * len(arms)),
                       np.zeros((len(arms), d)), alpha, lam, f1_threshold)
    X = pol.context(cheap, emb)
    R = outcome_matrix(records, arms, lam, f1_threshold)
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
    R = outcome_matrix(records, fixed.get("arms", MODE_NAMES), lam, f1_threshold)
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


def complexity_labels(records: Sequence[dict], *, f1_threshold: float = 0.5) -> np.ndarray:
    """[n] class index into CLASSES: the cheapest mode that answered correctly (none, one_shot, else multi when
    iterative or chain did); when none did, the class of the mode with the best F1 (ties: the cheaper; all zero:
    none, as searching more would only cost)."""
    cls = {"none": 0, "one_shot": 1, "iterative": 2, "chain": 2}
    out = []
    for r in records:
        ok = [m for m in MODE_NAMES if correct(r["arms"][m]["em"], r["arms"][m]["f1"], f1_threshold=f1_threshold)]
        best = ok[0] if ok else max(MODE_NAMES, key=lambda m: (r["arms"][m]["f1"], -MODE_NAMES.index(m)))
        out.append(cls[best])
    return np.array(out, dtype=np.int64)


def _softmax_fit(X: np.ndarray, y: np.ndarray, n_classes: int, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """L2-regularised multinomial logistic regression with balanced class weights (L-BFGS): (W, b)."""
    from scipy.optimize import minimize

    n, d = X.shape
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts[y] > 0, n / (n_classes * np.maximum(counts[y], 1.0)), 0.0)
    Y = np.eye(n_classes)[y]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W, b = theta[: n_classes * d].reshape(n_classes, d), theta[n_classes * d:]
        z = X @ W.T + b
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        val = -(w * (Y * logp).sum(1)).sum() / n + 0.5 * l2 * (W * W).sum() / n
        g = (np.exp(logp) - Y) * w[:, None] / n
        return float(val), np.concatenate([(g.T @ X + l2 * W / n).ravel(), g.sum(0)])

    res = minimize(loss, np.zeros(n_classes * (d + 1)), jac=True, method="L-BFGS-B")
    return res.x[: n_classes * d].reshape(n_classes, d), res.x[n_classes * d:]


def train_classifier(cheap: np.ndarray, emb: np.ndarray, records: Sequence[dict], *, l2: float = 1.0,
                     pca_dims: int = 8, lam: float = 0.1, f1_threshold: float = 0.5) -> ClassifierPolicy:
    """Fit Adaptive-RAG's complexity classifier on cached outcomes; "multi" runs the multi-step mode with the
    higher mean reward on `records`."""
    if len(records) < 3:
        raise ConfigError(f"need at least 3 cached questions to train a classifier, got {len(records)}: run "
                          "`adarag controller collect` on more questions")
    R = outcome_matrix(records, MODE_NAMES, lam, f1_threshold).mean(0)
    multi_mode = max(("iterative", "chain"), key=lambda m: R[MODE_NAMES.index(m)])
    pca, mean, std = feature_scaling(cheap, emb, pca_dims)
    y = complexity_labels(records, f1_threshold=f1_threshold)
    W, b = _softmax_fit((np.hstack([cheap, emb @ pca]) - mean) / std, y, len(CLASSES), l2)
    meta = {"n_train": len(records), "label_counts": {c: int((y == i).sum()) for i, c in enumerate(CLASSES)},
            "l2": l2, "pca_dims": pca.shape[1], "mean_train_reward": dict(zip(MODE_NAMES, map(float, R)))}
    return ClassifierPolicy(mean, std, pca, W, b, multi_mode, lam, f1_threshold, meta)


def index_features(index: str | Path, questions: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The bandit's raw features of `questions` (rag.control.features) from the index at `index`."""
    from rag.sdk import RAG

    with RAG.open(index, threads=1) as rag:
        return raw_features(rag, questions)


def train_policy(records: Sequence[dict], out: str | Path, *, index: str | Path | None = None, kind: str = "linucb",
                 lam: float = 0.1, f1_threshold: float = 0.5, epochs: int = 5, seed: int = 0,
                 generator: str = "qwen-0.5b", threads: int | None = 1, feedback: str = "full", cv: bool = False,
                 meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit a bandit (linucb, thompson; features from `index`) or a probe (hidden states of `generator`) on cached
    train outcomes and save it as a policy directory; returns what was trained. `cv` picks the bandit's ridge and
    PCA dims from CV_GRID by cross-validation on `records` alone."""
    meta = dict(meta or {})
    if kind == "probe":
        from rag.generator import Generator

        pol = train_probe(records, Generator.load(generator, threads=threads), lam=lam, f1_threshold=f1_threshold,
                          seed=seed)
        save_probe(pol, out, meta={**meta, "seed": seed})
        return {"policy": str(out), "kind": "probe", "generator": generator, "layer": pol.head.layer,
                "pool": pol.head.pool, "threshold": pol.threshold, "stop_threshold": pol.stop_threshold,
                "retrieve_mode": pol.retrieve_mode, **pol.meta, **meta, "seed": seed}
    if index is None:
        raise ConfigError(f"a {kind} policy reads its features from an index: pass --index INDEX")
    cheap, emb = index_features(index, [r["question"] for r in records])
    if kind == "classifier":
        cpol = train_classifier(cheap, emb, records, lam=lam, f1_threshold=f1_threshold)
        save_classifier(cpol, out, meta={**meta, "seed": seed})
        return {"policy": str(out), "kind": "classifier", "multi_mode": cpol.multi_mode, **cpol.meta, **meta}
    fixed = {"kind": kind, "lam": lam, "f1_threshold": f1_threshold, "epochs": epochs, "feedback": feedback}
    table = cross_validate(cheap, emb, records, CV_GRID, seed=seed, **fixed) if cv else []
    params = table[0]["params"] if table else {}
    pol, log = train_bandit(cheap, emb, records, seed=seed, **fixed, **params)
    meta.update({"n_train": len(records), "feedback": feedback, "epochs": epochs if feedback == "bandit" else 1,
                 "seed": seed, "replay_arm_counts": dict(Counter(e["arm"] for e in log)), "params": params,
                 "cv": table, "fixed_arm_train_reward": {
                     a: float(np.mean(outcome_matrix(records, [a], lam, f1_threshold))) for a in MODE_NAMES}})
    save_policy(pol, out, meta=meta)
    return {"policy": str(out), **meta}
