"""What every controller kind shares (rag.control.bandit, rag.control.probe): the MBA-RAG reward, the Decision
a controller returns, the Controller protocol, and the checksummed policy directory both are saved as."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from indexers.artifact import open_verified, publish
from indexers.errors import ConfigError
from rag.modes import MODE_NAMES

__all__ = ["DEFAULT_LAM", "MIN_CALLS", "POLICY_FORMAT", "POLICY_VERSION", "Budget", "Controller", "Decision",
           "best_fitting", "check_mode", "correct", "reward",
           "read_policy_dir", "write_policy_dir"]

POLICY_FORMAT, POLICY_VERSION = "adarag-policy", 2  # 1: bare sha256 per file, no manifest checksum
DEFAULT_LAM = 0.1  # MBA-RAG's cost of one retrieval call in the reward


def correct(em: float, f1: float, *, f1_threshold: float = 0.5) -> bool:
    """An outcome counts as correct on exact match or token F1 at or above the threshold."""
    return em >= 1.0 or f1 >= f1_threshold


def reward(is_correct: bool, retrieval_calls: int, *, lam: float = DEFAULT_LAM) -> float:
    """MBA-RAG reward: 1 - lam * retrieval calls when correct (none 1.0, one-shot 0.9 at lam 0.1), else -1."""
    return 1.0 - lam * retrieval_calls if is_correct else -1.0


@dataclass(frozen=True)
class Decision:
    """The chosen mode, the probability the policy had of choosing it (for IPS), and each arm's score."""

    mode: str
    propensity: float
    scores: dict[str, float]


MIN_CALLS: dict[str, int] = {"none": 0, "one_shot": 1, "iterative": 1, "chain": 1}
"""The fewest retrieval calls each mode makes; iterative and chain stop after `Budget.retrieval_calls` rounds."""


@dataclass(frozen=True)
class Budget:
    """A per-request cost cap: at most `retrieval_calls` retrievals, about `seconds` of work (None: no cap).

    The controller picks the best mode that fits (`fits`); the mode then keeps to it: iterative and chain run at
    most `retrieval_calls` rounds and start no new round once `seconds` have passed (the answer is still
    written, so the cap on seconds is soft by one generation)."""

    retrieval_calls: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        calls, secs = self.retrieval_calls, self.seconds
        if calls is not None and (isinstance(calls, bool) or not isinstance(calls, int) or calls < 0):
            raise ConfigError(f"budget retrieval_calls must be an int >= 0 or None, got {calls!r}")
        if secs is not None and (isinstance(secs, bool) or not isinstance(secs, (int, float)) or not secs > 0
                                 or secs == float("inf")):
            raise ConfigError(f"budget seconds must be a number > 0 or None, got {secs!r}")

    @classmethod
    def of(cls, value: object) -> Budget | None:
        """A Budget from a Budget, a dict like {"retrieval_calls": 1, "seconds": 5}, or None."""
        if value is None or isinstance(value, Budget):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"budget must be a dict like {{'retrieval_calls': 1, 'seconds': 5.0}} or None, got "
                              f"{type(value).__name__}")
        unknown = sorted(set(value) - {"retrieval_calls", "seconds"})
        if unknown:
            raise ConfigError(f"unknown budget key(s) {unknown}: use retrieval_calls and/or seconds")
        return cls(**value)

    def fits(self, mode: str) -> bool:
        """Whether `mode` can answer within the retrieval-call cap (seconds are kept during the run)."""
        return self.retrieval_calls is None or MIN_CALLS[check_mode(mode)] <= self.retrieval_calls


def best_fitting(scores: dict[str, float], budget: Budget | None) -> str:
    """The highest-scoring mode the budget allows (ties: the cheaper, in MODE_NAMES order); "none" always fits."""
    allowed = [m for m in MODE_NAMES if m in scores and (budget is None or budget.fits(m))]
    return max(allowed, key=lambda m: scores[m]) if allowed else "none"


def check_mode(mode: object) -> str:
    """`mode` if it names a search mode (rag.modes.MODE_NAMES), else a ConfigError listing them."""
    if mode not in MODE_NAMES:
        raise ConfigError(f"unknown mode {mode!r}: use one of {', '.join(MODE_NAMES)}")
    return str(mode)


@runtime_checkable
class Controller(Protocol):
    """Decides how much to search for a question (rag.control.bandit, rag.control.probe, a fixed mode).

    `lam` is the retrieval cost its feedback reward uses; `should_stop` may end iterative retrieval early."""

    lam: float

    def choose(self, question: str, budget: Budget | None = None) -> Decision:
        """The mode for this question, its propensity (for off-policy evaluation) and each arm's score; with a
        budget, the best mode that fits it (`Budget.fits`)."""
        ...

    def update(self, question: str, mode: str, reward: float) -> None:
        """Feedback on an answer given in `mode` (an unknown mode is a ConfigError)."""
        ...

    def should_stop(self, question: str, draft: str) -> bool:
        """Whether iterative retrieval may stop now, given the answer drafted so far."""
        ...


_FIX = "retrain it with `adarag controller train --cache CACHE --out POLICY`"


def write_policy_dir(out: str | Path, kind: str, arrays: dict[str, np.ndarray], params: dict[str, Any], *,
                     meta: dict[str, Any] | None = None) -> Path:
    """Any policy kind on disk (indexers.artifact): <name>.npy arrays + manifest.json (format, version, kind,
    params, meta, every file's size and sha256), published atomically: a failed write keeps the old policy."""
    with publish(out, POLICY_FORMAT, POLICY_VERSION) as (stage, body):
        for name, arr in arrays.items():
            np.save(stage / f"{name}.npy", np.asarray(arr, dtype=np.float64), allow_pickle=False)
        body.update({"kind": kind, **params, "meta": meta or {}})
    return Path(out)


def read_policy_dir(path: str | Path, kinds: Sequence[str] | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(manifest, arrays) of a policy directory, every file checksum-verified; `kinds` restricts the kind."""
    path = Path(path)
    m = open_verified(path, POLICY_FORMAT, (1, POLICY_VERSION), fix=_FIX)
    if kinds is not None and m.get("kind") not in kinds:
        raise ConfigError(f"{path} holds a {m.get('kind')!r} policy, expected one of {', '.join(kinds)}: load it "
                          "with load_controller(path), which reads every kind")
    return m, {name.removesuffix(".npy"): np.load(path / name, allow_pickle=False) for name in m["files"]}
