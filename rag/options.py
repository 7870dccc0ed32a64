"""The argument checks of `RAG.open` / `RAG(...)`: every argument at once, before the index is checksummed or any
model loads, so a typo costs milliseconds instead of a 40 s generator load followed by an error."""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from indexers.errors import ConfigError, RagError, positive_int
from indexers.models import resolve
from rag.control.load import check_controller_spec
from retrievers.rerank import check_reranker_spec

__all__ = ["MAX_THREADS", "check_options"]

MAX_THREADS = 1024
"""The most CPU threads a model may be given: far above any machine, low enough to catch a typo like 80000."""


def _check_threads(v: object) -> None:
    if v is not None:
        try:
            positive_int(v, "threads", MAX_THREADS)
        except ConfigError as e:
            raise ConfigError(f"{e}; or None for all cores") from None


def _check_generator(v: object) -> None:
    if not isinstance(v, str):
        raise ConfigError(f"generator must be a model name or path (str), got {type(v).__name__}")
    resolve(v, "causal-lm")  # an unknown name or a path that holds no model fails here, not after 40 s of loading


def _check_index_dir(v: object) -> None:
    if not isinstance(v, (str, os.PathLike)):
        raise ConfigError(f"index_dir must be a str or Path, got {type(v).__name__}")


def _check_bool(name: str, v: object) -> None:
    if not isinstance(v, bool):
        raise ConfigError(f"{name} must be True or False, got {type(v).__name__} {v!r}")


def _check_lock_wait(v: object) -> None:
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < float("inf")):
        raise ConfigError(f"lock_wait must be seconds >= 0 or None (wait for ever), got {type(v).__name__} {v!r}")


_OPTION_CHECKS: dict[str, Callable[[Any], object]] = {
    "index_dir": _check_index_dir,
    "generator": _check_generator,
    "threads": _check_threads,
    "verify": lambda v: _check_bool("verify", v),
    "max_query_chars": lambda v: positive_int(v, "max_query_chars"),
    "reranker": check_reranker_spec,
    "budget_tokens": lambda v: positive_int(v, "budget_tokens"),
    "depth": lambda v: positive_int(v, "depth"),
    "controller": check_controller_spec,
    "auto_reload": lambda v: _check_bool("auto_reload", v),
    "lock_wait": _check_lock_wait,
}


def check_options(**options: Any) -> None:
    """Check every argument of `RAG.open` / `RAG(...)` at once, before anything heavy opens or loads: types,
    ranges, and the generator, reranker and controller specs resolved (not loaded). One ConfigError lists all."""
    problems = []
    for name, value in options.items():
        try:
            _OPTION_CHECKS[name](value)
        except RagError as e:
            problems.append(str(e))
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        listed = "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
        raise ConfigError(f"{len(problems)} bad arguments: {listed}")
