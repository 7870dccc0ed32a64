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

__all__ = ["DEFAULT_LAM", "POLICY_FORMAT", "POLICY_VERSION", "Controller", "Decision", "check_mode", "correct", "reward",
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

    def choose(self, question: str) -> Decision:
        """The mode for this question, its propensity (for off-policy evaluation) and each arm's score."""
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
