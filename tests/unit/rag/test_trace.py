"""Trace steps are frozen records that serialise kind first, JSON-ready (tuples as lists)."""
from __future__ import annotations

import dataclasses
import json

import pytest

from rag.trace import ChainStep, ControllerStep, GenerateStep, RetrieveStep, StopStep, trace_dicts


def test_steps_are_frozen_and_serialise_kind_first():
    steps = [ControllerStep("bandit", "chain", 0.5, {"none": -1.0, "chain": 0.3}, 0.01),
             RetrieveStep("who?", ("d1#0", "d2#0"), 0.02, (("d2#0", "budget"),), 17),
             GenerateStep("subanswer", "X", 40, 3, 0.5), StopStep("draft"), ChainStep((("q1", "a1"),))]
    with pytest.raises(dataclasses.FrozenInstanceError):
        steps[1].query = "changed"
    dicts = trace_dicts(steps)
    assert [next(iter(d)) for d in dicts] == ["kind"] * 5
    assert [d["kind"] for d in dicts] == ["controller", "retrieve", "subanswer", "stop", "chain"]
    assert dicts[1] == {"kind": "retrieve", "query": "who?", "passages": ["d1#0", "d2#0"], "seconds": 0.02,
                        "dropped": [["d2#0", "budget"]], "evidence_tokens": 17}
    assert dicts[4]["links"] == [["q1", "a1"]] and json.loads(json.dumps(dicts)) == dicts


def test_a_step_kind_cannot_be_passed_where_it_is_fixed():
    with pytest.raises(TypeError):
        RetrieveStep("q", (), 0.0, kind="answer")  # type: ignore[call-arg]
