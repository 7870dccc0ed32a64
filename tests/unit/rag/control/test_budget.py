"""rag.control.base.Budget: a per-request cost cap that controllers choose within and the SDK enforces."""
from __future__ import annotations

import pytest

from indexers.errors import ConfigError
from rag.control.base import MIN_CALLS, Budget, best_fitting
from rag.modes import MODE_NAMES


def test_budget_checks_its_fields_and_reads_a_dict():
    assert Budget.of(None) is None and Budget.of({"retrieval_calls": 2}) == Budget(retrieval_calls=2)
    assert Budget.of({"seconds": 1.5}).seconds == 1.5
    for bad in ({"retrieval_calls": -1}, {"retrieval_calls": 1.5}, {"retrieval_calls": True}, {"seconds": 0},
                {"seconds": float("inf")}, {"seconds": "5"}):
        with pytest.raises(ConfigError, match="budget"):
            Budget.of(bad)
    with pytest.raises(ConfigError, match="unknown budget key"):
        Budget.of({"calls": 1})
    with pytest.raises(ConfigError, match="dict"):
        Budget.of(3)


def test_fits_and_best_fitting_respect_the_call_cap():
    assert set(MIN_CALLS) == set(MODE_NAMES)
    zero, one = Budget(retrieval_calls=0), Budget(retrieval_calls=1)
    assert [m for m in MODE_NAMES if zero.fits(m)] == ["none"]
    assert all(one.fits(m) for m in MODE_NAMES) and all(Budget().fits(m) for m in MODE_NAMES)
    scores = {"none": -0.5, "one_shot": 0.2, "iterative": 0.4, "chain": 0.3}
    assert best_fitting(scores, None) == "iterative" and best_fitting(scores, zero) == "none"
    assert best_fitting({"none": -0.1, "one_shot": -0.1}, None) == "none"  # ties: the cheaper mode


def test_the_sdk_refuses_a_fixed_mode_the_budget_cannot_fit(tmp_path):
    from indexers.index import BuildParams, build_index
    from indexers.types import Document
    from rag.sdk import RAG

    build_index([Document(id=f"d{i}", title=f"T{i}", text=f"text number {i}") for i in range(3)], tmp_path / "ix",
                BuildParams(stores=("bm25",)), progress=False)
    with RAG.open(tmp_path / "ix", threads=1) as rag:
        with pytest.raises(ConfigError, match="allows 0"):
            rag.ask("which text?", mode="one_shot", budget={"retrieval_calls": 0})
        with pytest.raises(ConfigError, match="unknown budget key"):
            rag.ask("which text?", budget={"tokens": 5})
