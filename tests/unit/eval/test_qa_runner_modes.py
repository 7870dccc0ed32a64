"""The QA runner drives the rag.modes search modes and records their measured cost."""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from eval.qa_data import QAExample
from eval.qa_runner import MODES, run_qa
from indexers.types import Hit


@dataclass(frozen=True)
class Gen:
    text: str
    n_prompt_tokens: int = 50
    n_new_tokens: int = 4
    seconds: float = 0.0


class FakeGenerator:
    def generate(self, messages, max_new_tokens=48):
        last = messages[-1]["content"]
        if "Reasoning so far" in last:
            return Gen("So the answer is: Paris.")
        return Gen("Paris [1]" if "[1]" in last else "Lyon")


def test_runner_records_each_modes_retrieval_calls_and_tokens(tmp_path):
    rag = SimpleNamespace(generator=FakeGenerator(), retriever=SimpleNamespace(
        search=lambda q, store, k: [Hit(id="p1", score=1.0, title="France", text="Paris is the capital.")]))
    ex = [QAExample(id="q1", question="What is the capital of France?", answers=("Paris",))]
    got = {}
    for mode in ("none", "one_shot", "iterative", "chain"):
        m = run_qa(ex, MODES[mode](rag, k=2, store=None, max_new_tokens=8), tmp_path / mode, report=False,
                   progress=False)
        got[mode] = (m["em"], m["retrieval_calls_per_q"], m["tokens_per_q"], m["mode_counts"])
    assert got["none"] == (0.0, 0.0, 4.0, {"none": 1})  # closed book: the fake model guesses Lyon
    assert got["one_shot"] == (1.0, 1.0, 4.0, {"one_shot": 1})  # one retrieval, one generation
    assert got["iterative"][:2] == (1.0, 1.0) and got["iterative"][3] == {"iterative": 1}
    assert got["chain"][0] == 1.0 and got["chain"][1] >= 1


def test_each_fixed_mode_runs_exactly_that_mode_and_never_asks_the_controller(tmp_path):
    """Issue 20's baseline bug: `--mode one_shot` called rag.ask without a mode, so the controller chose per
    question. A RAG whose ask() and controller fail proves no fixed mode goes near them."""
    def refuse(*a, **k):
        raise AssertionError("a fixed mode must not call rag.ask or the controller")

    rag = SimpleNamespace(generator=FakeGenerator(), ask=refuse, controller=SimpleNamespace(choose=refuse),
                          retriever=SimpleNamespace(search=lambda q, store, k: [Hit(id="p1", score=1.0, title="France",
                                                                                   text="Paris is the capital.")]))
    exs = [QAExample(id=f"q{i}", question=f"What is the capital of France, take {i}?", answers=("Paris",))
           for i in range(3)]
    for mode in ("none", "one_shot", "iterative", "chain"):
        m = run_qa(exs, MODES[mode](rag, k=2, store=None, max_new_tokens=8), tmp_path / mode, report=False,
                   progress=False)
        assert m["mode_counts"] == {mode: 3}, (mode, m["mode_counts"])
