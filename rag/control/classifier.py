"""Adaptive-RAG's query-complexity classifier as a controller (Jeong et al. 2024).

A small classifier predicts how much searching a question needs: "none" (the model knows), "one_shot" (one
retrieval) or "multi" (several: iterative or chain, whichever paid more on the training questions). Labels are
the cheapest mode that answered each cached question correctly (rag.control.train.complexity_labels). Features
are the bandit's (rag.control.features: cheap question signals + the PCA'd question embedding); the model is a
multinomial logistic regression, saved as a checksummed policy directory of kind "classifier".
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexers.errors import IndexFormatError
from rag.control.base import DEFAULT_LAM, Budget, Decision, best_fitting, check_mode, read_policy_dir, write_policy_dir
from rag.control.features import raw_features

__all__ = ["CLASSES", "ClassifierController", "ClassifierPolicy", "load_classifier", "save_classifier"]

log = logging.getLogger(__name__)

CLASSES: tuple[str, ...] = ("none", "one_shot", "multi")
_ARRAYS = ("mean", "std", "pca", "W", "b")


@dataclass(frozen=True)
class ClassifierPolicy:
    """Softmax regression over standardised features: `W` [classes, d], `b` [classes]; "multi" runs `multi_mode`."""

    mean: np.ndarray  # [d] feature means (cheap features, then PCA'd embedding)
    std: np.ndarray
    pca: np.ndarray  # [dim, p]
    W: np.ndarray
    b: np.ndarray
    multi_mode: str = "iterative"
    lam: float = DEFAULT_LAM
    f1_threshold: float = 0.5
    meta: dict[str, Any] = field(default_factory=dict)

    def design(self, cheap: np.ndarray, emb: np.ndarray) -> np.ndarray:
        """[n, d] standardised features."""
        return (np.hstack([cheap, emb @ self.pca]) - self.mean) / self.std

    def proba(self, cheap: np.ndarray, emb: np.ndarray) -> np.ndarray:
        """[n, classes] class probabilities."""
        z = self.design(cheap, emb) @ self.W.T + self.b
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def mode_of(self, cls: str) -> str:
        return self.multi_mode if cls == "multi" else cls


def save_classifier(pol: ClassifierPolicy, out: str | Path, *, meta: dict[str, Any] | None = None) -> Path:
    """Write a classifier policy directory (rag.control.base policy format, kind "classifier")."""
    return write_policy_dir(out, "classifier", {name: getattr(pol, name) for name in _ARRAYS},
                            {"classes": list(CLASSES), "multi_mode": pol.multi_mode, "lam": pol.lam,
                             "f1_threshold": pol.f1_threshold}, meta={**pol.meta, **(meta or {})})


def load_classifier(path: str | Path) -> ClassifierPolicy:
    """Read and checksum-verify a classifier policy directory written by `save_classifier`."""
    m, arrays = read_policy_dir(path, ("classifier",))
    lost = [name for name in _ARRAYS if name not in arrays]
    if lost or m.get("classes") != list(CLASSES):
        raise IndexFormatError(f"{path} is not a whole classifier policy (missing {lost or 'classes'}): retrain it "
                               "with `adarag controller train --kind classifier`")
    return ClassifierPolicy(**{k: arrays[k] for k in _ARRAYS}, multi_mode=check_mode(m["multi_mode"]),
                            lam=float(m["lam"]), f1_threshold=float(m["f1_threshold"]), meta=m.get("meta", {}))


class ClassifierController:
    """Chooses the mode of the predicted complexity class; under a budget, the most likely class that fits."""

    def __init__(self, policy: ClassifierPolicy, rag: Any) -> None:
        self.policy, self.rag = policy, rag

    @property
    def lam(self) -> float:
        return self.policy.lam

    def choose(self, question: str, budget: Budget | None = None) -> Decision:
        cheap, emb = raw_features(self.rag, [question])
        p = self.policy.proba(cheap, emb)[0]
        scores = {self.policy.mode_of(c): float(q) for c, q in zip(CLASSES, p)}
        return Decision(best_fitting(scores, budget), 1.0, scores)

    def should_stop(self, question: str, draft: str) -> bool:
        return False

    def update(self, question: str, mode: str, reward: float) -> None:
        """Feedback does not change the classifier (it is trained offline from the cache)."""
        check_mode(mode)
        log.info("classifier controller: feedback reward %.2f for mode %s not learned online", reward, mode)
