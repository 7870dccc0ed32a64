"""eval.beir: BEIR loaders, pytrec_eval metrics against hand-computed values, run directories, and the 2CR pin
(bm25, ngram, bm25+ngram on the bundled HotpotQA data must reproduce eval/2cr/beir.yaml to 4 d.p.)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("pytrec_eval", reason="needs adarag[eval] (pytrec-eval-terrier)")

from eval.beir import (METRICS, RUN_FILE, TWO_CR_YAML, check_2cr, evaluate_run, grade, load_beir, load_corpus,
                       load_qrels, load_queries, read_trec_run, run_beir, write_trec_run)
from eval.beir_report import write_beir_report
from indexers.errors import ConfigError, CorpusError
from indexers.index import BuildParams, build_index
from indexers.ngram import NgramParams
from indexers.ingest import read_corpus
from tests.support.data import TOKENIZER
from tests.support.eval_beir import _write
from tests.support.eval_beir import beir_dir, bm25_index  # noqa: F401 (fixtures)


# --------------------------------------------------------------------------- loaders


def test_load_beir_reads_the_standard_layout(beir_dir):
    data = load_beir(beir_dir)
    assert data.queries == {"q1": "which planet has rings", "q2": "how does sourdough bread rise"}  # judged only
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d4": 2, "d3": 1}}
    assert [d.id for d in load_corpus(beir_dir)] == ["d1", "d2", "d3", "d4"]


def test_load_qrels_reads_trec_four_columns_and_no_header(tmp_path):
    p = _write(tmp_path / "q.txt", "q1 0 d1 1\nq1 0 d2 0\nq2 0 d9 3\n")
    assert load_qrels(p) == {"q1": {"d1": 1, "d2": 0}, "q2": {"d9": 3}}


@pytest.mark.parametrize("body, match", [
    ("query-id\tcorpus-id\tscore\nq1\td1\n", r"q\.tsv:2: expected 3 tab-separated columns"),
    ("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\thigh\n", r"q\.tsv:3: relevance score 'high' is not an integer"),
    ("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td1\t0\n", r"q\.tsv:3: pair \(q1, d1\) is judged twice"),
    ("query-id\tcorpus-id\tscore\n", r"holds no judgments"),
])
def test_load_qrels_errors_name_file_and_line(tmp_path, body, match):
    with pytest.raises(CorpusError, match=match):
        load_qrels(_write(tmp_path / "q.tsv", body))


@pytest.mark.parametrize("body, match", [
    ('{"_id": "q1", "text": "a"}\n{"_id": "q2", "text": \n', r"queries\.jsonl:2: malformed JSON"),
    ('{"_id": "q1", "text": "a"}\n\n{"_id": "q1", "text": "b"}\n', r"queries\.jsonl:3: duplicate query id 'q1' \(first at line 1\)"),
    ('{"_id": "q1", "text": "  "}\n', r"queries\.jsonl:1: query 'q1' has no text"),
    ('{"text": "a"}\n', r"queries\.jsonl:1: query has no id"),
    ('["q1", "a"]\n', r"queries\.jsonl:1: expected a JSON object"),
])
def test_load_queries_errors_name_file_and_line(tmp_path, body, match):
    with pytest.raises(CorpusError, match=match):
        load_queries(_write(tmp_path / "queries.jsonl", body))


def test_load_beir_errors(beir_dir, tmp_path):
    with pytest.raises(CorpusError, match=r"dev\.tsv does not exist; splits here: test"):
        load_beir(beir_dir, split="dev")
    with pytest.raises(CorpusError, match="does not exist"):
        load_beir(tmp_path / "nowhere")
    _write(beir_dir / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq9\td1\t1\n")
    with pytest.raises(CorpusError, match=r"not in .*queries\.jsonl \(first: 'q9'\)"):
        load_beir(beir_dir)
    _write(beir_dir / "corpus.jsonl", '{"_id": "d1", "text": "ok"}\n{"_id": "d2"}\n')
    with pytest.raises(CorpusError, match=r"corpus\.jsonl:2: .*no \"text\" field"):
        load_corpus(beir_dir)


# --------------------------------------------------------------------------- metrics


def test_metrics_match_hand_computed_values():
    qrels = {"q1": {"d1": 1, "d3": 1},
             "q2": {"d5": 2, "d6": 1},
             "q3": {"d7": 1},                       # judged, but the run has nothing for it: scores 0
             "q4": {"x10": 1}}                      # the relevant doc is 11th: outside MRR@10 and nDCG@10
    run = {"q1": {"d1": 0.9, "d2": 0.8, "d3": 0.7},
           "q2": {"d6": 0.5, "d5": 0.4},
           "q4": {f"x{i}": 1.0 - i / 100 for i in range(20)},
           "q_unjudged": {"d1": 1.0}}
    means, per_q = evaluate_run(qrels, run)
    l2 = math.log2
    # q1: gains 1,0,1 -> DCG 1 + 1/log2(4); ideal 1 + 1/log2(3). trec_eval's nDCG uses the grade as the gain.
    assert per_q["q1"]["ndcg@10"] == pytest.approx((1 + 1 / l2(4)) / (1 + 1 / l2(3)))
    assert per_q["q1"]["map"] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert per_q["q1"]["mrr@10"] == 1.0 and per_q["q1"]["recall@100"] == 1.0
    # q2: graded, the grade-1 doc first: DCG 1 + 2/log2(3); ideal 2 + 1/log2(3)
    assert per_q["q2"]["ndcg@10"] == pytest.approx((1 + 2 / l2(3)) / (2 + 1 / l2(3)))
    assert per_q["q3"] == {m: 0.0 for m in METRICS}
    assert per_q["q4"]["mrr@10"] == 0.0 and per_q["q4"]["ndcg@10"] == 0.0
    assert per_q["q4"]["recall@100"] == 1.0 and per_q["q4"]["map"] == pytest.approx(1 / 11)
    assert set(per_q) == {"q1", "q2", "q3", "q4"}
    for m in METRICS:  # the mean is over all four judged queries
        assert means[m] == pytest.approx(sum(v[m] for v in per_q.values()) / 4)


def test_trec_run_round_trip(tmp_path):
    path = write_trec_run({"q1": [("d2", 2.5), ("d1", 1.25)]}, tmp_path / "run.trec", tag="t")
    assert path.read_text().splitlines() == ["q1 Q0 d2 1 2.500000 t", "q1 Q0 d1 2 1.250000 t"]
    assert read_trec_run(path) == {"q1": {"d2": 2.5, "d1": 1.25}}


@pytest.mark.parametrize("expected, got, want", [
    (0.7918, 0.79184, "OK"), (0.7918, 0.79176, "OK"), (0.7918, 0.7922, "OKish"), (0.7918, 0.7914, "OKish"),
    (0.7918, 0.7924, "FAIL"),
])
def test_grade(expected, got, want):
    assert grade(expected, got) == want


# --------------------------------------------------------------------------- run directories


def test_run_beir_writes_run_metrics_and_report(beir_dir, bm25_index, tmp_path):
    out = tmp_path / "run"
    result = run_beir(beir_dir, bm25_index, "bm25", out, k=10)
    assert set(result) == set(METRICS) | {"n_queries"} and result["n_queries"] == 2
    assert result["mrr@10"] == 1.0 and result["recall@100"] == 1.0  # the right docs come first on this corpus
    lines = (out / RUN_FILE).read_text().splitlines()
    assert lines[0].split()[:4] == ["q1", "Q0", "d1", "1"] and lines[0].endswith("adarag-bm25")
    assert {ln.split()[0] for ln in lines} == {"q1", "q2"}  # the unjudged q3 is not run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"] == "bm25" and metrics["ndcg@10"] == result["ndcg@10"]
    assert "data:image/png;base64," in (out / "report.html").read_text()
    assert "| bm25 |" in (out / "report.md").read_text()


def test_run_beir_config_errors(beir_dir, bm25_index, tmp_path):
    with pytest.raises(ConfigError, match="no dense store"):
        run_beir(beir_dir, bm25_index, "fused+rerank", tmp_path / "r")
    with pytest.raises(ConfigError, match="has no dense store"):
        run_beir(beir_dir, bm25_index, "fused", tmp_path / "r")
    with pytest.raises(ConfigError, match="unknown store 'splade'"):
        run_beir(beir_dir, bm25_index, "splade", tmp_path / "r")
    with pytest.raises(ConfigError, match="k must be a positive int"):
        run_beir(beir_dir, bm25_index, "bm25", tmp_path / "r", k=0)


def test_run_beir_refuses_an_index_of_another_corpus(beir_dir, tmp_path):
    other = _write(tmp_path / "other.jsonl", '{"_id": "z1", "text": "nothing to do with planets or bread"}\n')
    build_index(read_corpus(other), tmp_path / "ix", BuildParams(stores=("bm25",)), progress=False)
    with pytest.raises(ConfigError, match="none of the 3 relevant documents"):
        run_beir(beir_dir, tmp_path / "ix", "bm25", tmp_path / "r")


def test_report_compares_runs(beir_dir, tmp_path):
    ix = tmp_path / "ix"
    build_index(read_corpus(beir_dir / "corpus.jsonl"), ix, BuildParams(stores=("bm25", "ngram"), ngram=NgramParams(tokenizer=TOKENIZER)),
                progress=False)
    for config in ("bm25", "ngram"):
        run_beir(beir_dir, ix, config, tmp_path / config, k=10, report=False)
    md, html = write_beir_report([tmp_path / "bm25", tmp_path / "ngram"], tmp_path / "cmp")
    text = md.read_text()
    assert "| bm25 |" in text and "| ngram |" in text and "ndcg@10" in text
    assert html.read_text().count("<tr>") == 2 * (1 + 2)  # metrics and runs tables: header + one row per run
    with pytest.raises(ConfigError, match="not a finished BEIR run"):
        write_beir_report([tmp_path / "nothing"], tmp_path / "cmp")


# --------------------------------------------------------------------------- 2CR pin


def test_2cr_yaml_lists_the_documented_conditions():
    import yaml

    names = [c["name"] for c in yaml.safe_load(TWO_CR_YAML.read_text())["conditions"]]
    assert {"bm25", "ngram", "dense", "fused"} <= set(names)
    with pytest.raises(ConfigError, match="no condition 'splade'"):
        check_2cr(only=["splade"])


def test_report_compares_beir_runs_and_refuses_a_mix(tmp_path, beir_dir, bm25_index, capsys) -> None:
    """`adarag report` on `adarag eval beir` run directories writes the BEIR comparison (one row per run)."""
    from eval.beir import run_beir
    from services.cli import main

    for c in ("bm25", "bm25+rerank"):
        run_beir(beir_dir, bm25_index, c, tmp_path / c, report=False)
    assert main(["report", str(tmp_path / "bm25"), str(tmp_path / "bm25+rerank"), "--out", str(tmp_path / "r")]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| bm25 |" in md and "| bm25+rerank |" in md and (tmp_path / "r" / "beir_metrics.png").exists()
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "config.json").write_text("{}")
    assert main(["report", str(tmp_path / "bm25"), str(tmp_path / "qa")]) != 0
    assert "not a mix" in capsys.readouterr().err


def _two_cr_yaml(path: Path, data: Path, scores: dict[str, dict[str, float]]) -> Path:
    import yaml

    conds = [{"name": "bm25", "dataset": "mini", "index": {"stores": ["bm25"]}, "config": "bm25",
              "scores": scores["bm25"]},
             {"name": "bm25+ltr", "dataset": "mini", "index": {"stores": ["bm25"]}, "config": "bm25+rerank",
              "rerank": "ltr", "scores": scores["bm25+ltr"]}]
    path.write_text(yaml.safe_dump({"datasets": {"mini": {"data": str(data), "split": "test"}},
                                    "conditions": conds}), encoding="utf-8")
    return path


def test_eval_2cr_command_grades_each_condition_and_fails_on_a_changed_score(tmp_path, beir_dir, capsys):
    """`adarag eval 2cr`: rebuilds, reruns and grades; a wrong expected score is FAIL (exit 1), the reproduced
    scores pinned back are all OK (exit 0), and the table lands in 2cr.md / 2cr.html."""
    from services.cli import main

    wrong = {"bm25": {"ndcg@10": 0.0, "mrr@10": 0.0}, "bm25+ltr": {"ndcg@10": 0.0}}
    y1 = _two_cr_yaml(tmp_path / "a.yaml", beir_dir, wrong)
    assert main(["eval", "2cr", "--yaml", str(y1), "--work", str(tmp_path / "w1"), "--json"]) == 1
    got = json.loads(capsys.readouterr().out)
    assert got["fail"] == 3 and {g["grade"] for g in got["grades"]} == {"FAIL"}
    scores: dict[str, dict[str, float]] = {}
    for g in got["grades"]:
        assert 0.0 < g["got"] <= 1.0
        scores.setdefault(g["condition"], {})[g["metric"]] = round(g["got"], 4)
    y2 = _two_cr_yaml(tmp_path / "b.yaml", beir_dir, scores)
    assert main(["eval", "2cr", "--yaml", str(y2), "--work", str(tmp_path / "w2"), "--out", str(tmp_path / "r")]) == 0
    assert "FAIL" not in capsys.readouterr().out
    md = (tmp_path / "r" / "2cr.md").read_text()
    assert "| bm25+ltr |" in md and "0 FAIL" in md and (tmp_path / "r" / "2cr.html").exists()
    assert main(["eval", "2cr", "--yaml", str(y2), "--only", "splade"]) == 2
    assert "no condition 'splade'" in capsys.readouterr().err
