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
    assert "<svg xmlns='http://www.w3.org/2000/svg'" in text and "<title>run-b: 3.00 calls/q" in text  # inline plot
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


def test_cost_report_table_and_svg_points(tmp_path):
    from eval.report import cost_accuracy_svg, write_cost_report

    rows = {"none": {"n": 4, "em": 0.0, "f1": 0.1, "retrieval_calls_per_q": 0.0, "tokens_per_q": 3.0,
                     "seconds_per_q": 1.0, "mode_counts": {"none": 4}},
            "probe <x>": {"n": 4, "em": 0.5, "f1": 0.75, "retrieval_calls_per_q": 2.0, "tokens_per_q": 9.0,
                          "seconds_per_q": 5.0, "mode_counts": {"iterative": 3, "none": 1}}}
    md, page = write_cost_report(rows, tmp_path / "r", title="Replay", note="held-out")
    text = page.read_text(encoding="utf-8")
    assert "<th>retrieval_calls_per_q</th>" in text and "<td>iterative 3, none 1</td>" in text
    assert "probe &lt;x&gt;" in text and "<script" not in text and "http://" not in text.replace(
        "xmlns='http://www.w3.org/2000/svg'", "")
    assert "| probe <x> | 4 | 0.5000 | 0.7500 | 2.0000 | 9.0000 | 5.0000 | iterative 3, none 1 |" in md.read_text()
    assert (tmp_path / "r" / "cost_vs_accuracy.svg").read_text().startswith("<svg")
    # Geometry: x = 56 + 414 * calls / 2 (axis to 2.0), y = 24 + 308 * (1 - score / 0.5) (axis to best + 0.1).
    svg = cost_accuracy_svg([("a", 0.0, 0.0, 0.2), ("b", 2.0, 0.4, 0.25)])
    assert "<circle cx='56.0' cy='332.0'" in svg and "<circle cx='470.0' cy='85.6'" in svg
    assert "<rect x='52.0' y='204.8'" in svg  # F1 0.2 of a: a hollow square centred at (56, 208.8)
    with pytest.raises(ConfigError):
        write_cost_report({}, tmp_path / "x", title="t")
