"""What every controller kind shares (rag.control.bandit, rag.control.probe): the MBA-RAG reward, the Decision
a controller returns, the Controller protocol, and the checksummed policy directory both are saved as."""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from indexers.errors import ConfigError, IndexFormatError
from indexers.index_dir import adarag_version, commit_staging, sha256_file, staging_dir
from rag.modes import MODE_NAMES

__all__ = ["DEFAULT_LAM", "POLICY_FORMAT", "POLICY_VERSION", "Controller", "Decision", "check_mode", "correct", "reward",
           "read_policy_dir", "write_policy_dir"]

POLICY_FORMAT, POLICY_VERSION = "adarag-policy", 1
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


def write_policy_dir(out: str | Path, kind: str, arrays: dict[str, np.ndarray], params: dict[str, Any], *,
                     meta: dict[str, Any] | None = None) -> Path:
    """Any policy kind on disk: <name>.npy arrays + manifest.json (format, version, kind, params, sha256 per file),
    staged in `<out>.incomplete-<pid>-<hex>` and swapped into place, so a failed write keeps the old policy."""
    out = Path(out)
    stage = staging_dir(out)
    files = {}
    for name, arr in arrays.items():
        np.save(stage / f"{name}.npy", np.asarray(arr, dtype=np.float64), allow_pickle=False)
        files[f"{name}.npy"] = sha256_file(stage / f"{name}.npy")
    manifest = {"format": POLICY_FORMAT, "version": POLICY_VERSION, "kind": kind, **params, "files": files,
                "adarag_version": adarag_version(), "created": time.time(), "meta": meta or {}}
    (stage / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    commit_staging(stage, out)
    return out


def read_policy_dir(path: str | Path, kinds: Sequence[str] | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(manifest, arrays) of a policy directory, every file checksum-verified; `kinds` restricts the kind."""
    path = Path(path)
    try:
        m = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexFormatError(f"{path} is not a policy directory ({e}): train one with `adarag controller "
                               "train --cache CACHE --out POLICY`") from e
    if m.get("format") != POLICY_FORMAT or m.get("version") != POLICY_VERSION:
        raise IndexFormatError(f"{path} is {m.get('format')} v{m.get('version')}, this build reads "
                               f"{POLICY_FORMAT} v{POLICY_VERSION}: retrain with `adarag controller train`")
    if kinds is not None and m.get("kind") not in kinds:
        raise ConfigError(f"{path} holds a {m.get('kind')!r} policy, expected one of {', '.join(kinds)}: load it "
                          "with load_controller(path), which reads every kind")
    arrays = {}
    for name, digest in m.get("files", {}).items():
        f = path / name
        if not f.exists() or sha256_file(f) != digest:
            raise IndexFormatError(f"{f} is missing or fails its checksum: retrain with `adarag controller train`")
        arrays[name.removesuffix(".npy")] = np.load(f, allow_pickle=False)
    return m, arrays
