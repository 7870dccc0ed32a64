"""The steps an answer took, as frozen records: what `ModeResult.trace` and `Answer.trace` hold.

Each step knows its `kind` and serialises with `to_dict()` (kind first, tuples as lists), the shape the HTTP
API, the CLI's JSON and the QA runner's predictions files carry.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Union

__all__ = ["ChainStep", "ControllerStep", "GenerateStep", "RetrieveStep", "Step", "StopStep", "trace_dicts"]


def _plain(x: Any) -> Any:
    if isinstance(x, (tuple, list)):
        return [_plain(v) for v in x]
    if isinstance(x, Mapping):
        return {k: _plain(v) for k, v in x.items()}
    return x


class _Step:
    kind: str

    def to_dict(self) -> dict[str, Any]:
        """{"kind": ..., then the fields in order}, JSON-ready."""
        return {"kind": self.kind, **{f.name: _plain(getattr(self, f.name)) for f in fields(self)  # type: ignore[arg-type]
                                      if f.name != "kind"}}


@dataclass(frozen=True)
class RetrieveStep(_Step):
    """One retrieval: the query, the passage ids it returned, and (from the SDK's evidence selection) the passages
    dropped with their reason and the evidence's token count."""

    query: str
    passages: tuple[str, ...]
    seconds: float
    dropped: tuple[tuple[str, str], ...] = ()
    evidence_tokens: int = 0
    kind: Literal["retrieve"] = field(default="retrieve", init=False)


@dataclass(frozen=True)
class GenerateStep(_Step):
    """One generator call: a thought (iterative), a sub-query or sub-answer (chain), or the final answer."""

    kind: Literal["answer", "thought", "subquery", "subanswer"]
    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float


@dataclass(frozen=True)
class StopStep(_Step):
    """Iterative retrieval stopped early: the controller judged the draft so far right."""

    draft: str
    seconds: float = 0.0
    kind: Literal["stop"] = field(default="stop", init=False)


@dataclass(frozen=True)
class ChainStep(_Step):
    """A chain's (sub-query, sub-answer) links, recorded after its answer."""

    links: tuple[tuple[str, str], ...]
    seconds: float = 0.0
    kind: Literal["chain"] = field(default="chain", init=False)


@dataclass(frozen=True)
class ControllerStep(_Step):
    """The controller's choice, first in a trace: which controller, the mode, its propensity, each arm's score."""

    controller: str
    mode: str
    propensity: float
    scores: Mapping[str, float]
    seconds: float = 0.0
    kind: Literal["controller"] = field(default="controller", init=False)


Step = Union[RetrieveStep, GenerateStep, StopStep, ChainStep, ControllerStep]


def trace_dicts(trace: Iterable[Step]) -> list[dict[str, Any]]:
    """A trace as JSON-ready dicts."""
    return [s.to_dict() for s in trace]
