"""The QA runner: resumable predictions, config checks, metrics, with a stub answerer and (slow) the real SDK."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from eval.qa_runner import read_predictions, run_qa_eval
from indexers.errors import ConfigError
from indexers.types import Hit

QA = [{"id": f"q{i}", "question": f"question {i}?", "answers": [f"ans{i}"], "supporting_ids": [f"d{i}"]}
      for i in range(5)]


class Stub:
    """Answers q0..q4; right on even ids. Raises once it has answered `fail_after` questions (a kill)."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.asked: list[str] = []
        self.fail_after = fail_after

    def __call__(self, question: str):
        if self.fail_after is not None and len(self.asked) >= self.fail_after:
            raise KeyboardInterrupt("killed")
        self.asked.append(question)
        i = int(question.split()[1].rstrip("?"))
        hits = [Hit(id=f"d{i}#0", score=2.0, doc_id=f"d{i}", title=f"T{i}", text="x"),
                Hit(id="dz#0", score=1.0, doc_id="dz", title="Z", text="y")]
        return SimpleNamespace(answer=f"ans{i}" if i % 2 == 0 else "wrong", passages=hits, citations=[f"d{i}#0"],
                               mode="one_shot", timings={"total": 0.01}, n_prompt_tokens=100, n_new_tokens=4,
                               retrieval_calls=1)


@pytest.fixture
def qa_file(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in QA), encoding="utf-8")
    return path


def test_run_writes_predictions_metrics_and_report(tmp_path, qa_file):
    out = tmp_path / "run"
    m = run_qa_eval(qa_file, tmp_path / "idx", out, k=2, answer_fn=Stub(), progress=False)
    assert m["n"] == 5 and m["em"] == pytest.approx(0.6) and m["f1"] == pytest.approx(0.6)
    assert m["r_precision"] == 1.0 and m["support_recall@k"] == 1.0 and m["kilt_em"] == pytest.approx(0.6)
    assert m["retrieval_calls_per_q"] == 1.0 and m["tokens_per_q"] == 4.0 and m["mode_counts"] == {"one_shot": 5}
    assert {p.name for p in out.iterdir()} >= {"config.json", "predictions.jsonl", "metrics.json",
                                               "report.html", "report.md"}
    assert json.loads((out / "metrics.json").read_text()) == m
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["mode"] == "one_shot" and cfg["k"] == 2 and cfg["generator"] == "qwen-0.5b"
    rec = read_predictions(out / "predictions.jsonl")[1]
    assert rec["prediction"] == "wrong" and rec["passages"][0]["id"] == "d1#0" and rec["scores"]["em"] == 0.0


def test_a_killed_run_resumes_where_it_stopped(tmp_path, qa_file):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_qa_eval(qa_file, tmp_path / "idx", out, answer_fn=Stub(fail_after=2), progress=False)
    assert [r["id"] for r in read_predictions(out / "predictions.jsonl")] == ["q0", "q1"]
    with open(out / "predictions.jsonl", "a", encoding="utf-8") as f:
        f.write('{"id": "q2", "question": "torn')               # killed mid-write
    second = Stub()
    m = run_qa_eval(qa_file, tmp_path / "idx", out, answer_fn=second, progress=False)
    assert second.asked == ["question 2?", "question 3?", "question 4?"]
    assert m["n"] == 5 and m["em"] == pytest.approx(0.6)
    assert [r["id"] for r in read_predictions(out / "predictions.jsonl")] == [f"q{i}" for i in range(5)]
    third = Stub()
    run_qa_eval(qa_file, tmp_path / "idx", out, answer_fn=third, progress=False)
    assert third.asked == []                                    # nothing left to do


def test_limit_and_config_mismatch(tmp_path, qa_file):
    out = tmp_path / "run"
    assert run_qa_eval(qa_file, tmp_path / "idx", out, limit=2, answer_fn=Stub(), progress=False)["n"] == 2
    grown = Stub()
    assert run_qa_eval(qa_file, tmp_path / "idx", out, limit=3, answer_fn=grown, progress=False)["n"] == 3
    assert grown.asked == ["question 2?"]
    with pytest.raises(ConfigError, match="different k"):
        run_qa_eval(qa_file, tmp_path / "idx", out, k=9, answer_fn=Stub(), progress=False)
    with pytest.raises(ConfigError, match="k must be a positive int"):
        run_qa_eval(qa_file, tmp_path / "idx", out, k=0, answer_fn=Stub(), progress=False)


def test_unknown_mode_lists_valid_ones(tmp_path, qa_file):
    with pytest.raises(ConfigError, match="unknown mode 'sideways'.*one_shot"):
        run_qa_eval(qa_file, tmp_path / "idx", tmp_path / "run", mode="sideways")


def test_malformed_middle_line_is_an_error(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text('{"id": "a"}\n{bad\n{"id": "b"}\n', encoding="utf-8")
    with pytest.raises(Exception, match="predictions.jsonl:2"):
        read_predictions(path)


