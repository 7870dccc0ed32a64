"""The Probing-RAG controller (Baek et al. 2025): a linear probe on the generator's own hidden states decides
whether a question is answerable without retrieval, and when an iterative search may stop.

Features: the pooled hidden state (last token or mean) of one intermediate layer of the target LM on the
closed-book prompt (`rag.prompts.probe_messages`). Head: L2-regularised logistic regression with balanced class
weights (trained in rag.control.train). A second head on the same layer reads question + draft answer (label:
that draft was correct) and decides the iterative stop. Saved as a checksummed policy directory
(rag.control.base) of kind "probe".
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexers.errors import ConfigError
from rag.control.base import Budget, Decision, check_mode, read_policy_dir, write_policy_dir
from rag.modes import MODE_NAMES
from rag.prompts import probe_messages

__all__ = ["NEVER", "POOLS", "ProbeController", "ProbeHead", "ProbePolicy", "load_probe", "save_probe"]

log = logging.getLogger(__name__)

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


def _head_arrays(prefix: str, h: ProbeHead) -> dict[str, np.ndarray]:
    return {f"{prefix}_mean": h.mean, f"{prefix}_std": h.std, f"{prefix}_w": np.append(h.w, h.b)}


def _head(prefix: str, arrays: dict[str, np.ndarray], layer: int, pool: str) -> ProbeHead:
    wb = arrays[f"{prefix}_w"]
    return ProbeHead(layer, pool, arrays[f"{prefix}_mean"], arrays[f"{prefix}_std"], wb[:-1], float(wb[-1]))


def save_probe(pol: ProbePolicy, out: str | Path, *, meta: dict[str, Any] | None = None) -> Path:
    """Write a probe policy directory (rag.control.base policy format, kind "probe")."""
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

    def choose(self, question: str, budget: Budget | None = None) -> Decision:
        """none when the probe thinks the model knows, else the policy's retrieval mode; under a budget that
        mode's cap, one_shot (one call), and none when no retrieval is allowed."""
        p = self._p(self.policy.head, probe_messages(question))
        mode = self.policy.choose(p)
        if budget is not None and not budget.fits(mode):
            mode = "one_shot" if budget.fits("one_shot") else "none"
        return Decision(mode, 1.0, {"p_answerable": p, "threshold": self.policy.threshold})

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
