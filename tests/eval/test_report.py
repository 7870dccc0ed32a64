"""The report: metrics side by side, an embedded plot, bootstrap intervals and a drill-down, from two runs."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from eval.qa_data import QAExample
from eval.qa_runner import run_qa
from eval.report import load_run, paired_bootstrap, write_report
from indexers.errors import ConfigError
from indexers.types import Hit

EXAMPLES = [QAExample(f"q{i}", f"What is <thing> {i}?", (f"gold {i}",), (f"d{i}",)) for i in range(8)]


def _answerer(right_every: int, calls: int):
    def fn(question: str):
        i = int(question.split()[-1].rstrip("?"))
        ok = i % right_every == 0
        return SimpleNamespace(answer=f"gold {i}" if ok else "no idea", passages=[Hit(f"d{i}#0", 1.0, f"d{i}", "T", "txt")],
                               citations=[], mode="one_shot", n_prompt_tokens=50, n_new_tokens=3 * calls,
                               retrieval_calls=calls, timings={})
    return fn


@pytest.fixture
def two_runs(tmp_path):
    a, b = tmp_path / "run-a", tmp_path / "run-b"
    run_qa(EXAMPLES, _answerer(4, 1), a, config={"mode": "one_shot", "generator": "g"}, progress=False, report=False)
    run_qa(EXAMPLES, _answerer(2, 3), b, config={"mode": "iterative", "generator": "g"}, progress=False, report=False)
    return a, b


def test_report_has_table_plot_intervals_and_drilldown(tmp_path, two_runs):
    md, page = write_report(two_runs, tmp_path / "report")
    text = page.read_text(encoding="utf-8")
    assert "<table>" in text and "<th>run-a</th>" in text and "<th>run-b</th>" in text
    assert "data:image/png;base64,iVBORw0KGgo" in text          # an embedded PNG
    assert "run-b − run-a" in text and "95% CI" in text
    assert "What is &lt;thing&gt; 3?" in text                    # drill-down, escaped
    assert "<script" not in text and "src='http" not in text     # self-contained
    m = md.read_text(encoding="utf-8")
    assert "| metric | run-a | run-b |" in m and "| em | 0.2500 | 0.5000 |" in m
    assert "| retrieval_calls_per_q | 1.0000 | 3.0000 |" in m
    assert "+0.2500" in m


def test_single_run_report_and_errors(tmp_path, two_runs):
    _, page = write_report([two_runs[0]], tmp_path / "one")
    assert "Needs two runs" in page.read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="not a finished QA run"):
        write_report([tmp_path / "missing"], tmp_path / "x")
    with pytest.raises(ConfigError):
        write_report([], tmp_path / "x")
    assert load_run(two_runs[1]).metrics["n"] == 8


def test_paired_bootstrap_is_seeded_and_sane():
    a, b = [0, 1, 0, 1, 0, 1, 0, 1], [1, 1, 1, 1, 0, 1, 0, 1]
    d, lo, hi, p = paired_bootstrap(a, b)
    assert d == 0.25 and lo <= d <= hi and 0 <= p < 0.5
    assert paired_bootstrap(a, b) == (d, lo, hi, p)             # fixed seed
    assert paired_bootstrap(a, a)[:3] == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        paired_bootstrap([], [])
