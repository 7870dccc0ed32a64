"""eval/bundled_beir.py: the FanOutQA-leaf x Wikipedia-summaries set in the BEIR layout, and `adarag data`."""
from __future__ import annotations

import json

import pytest

from eval.beir import load_beir, load_corpus, read_trec_run, write_trec_run
from eval.bundled_beir import write_fanoutqa_leaf
from indexers.errors import MissingDependencyError
from services.cli import main
from tests.prereq import require


@pytest.fixture(scope="module")
def fq_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("fqleaf")
    try:
        n = write_fanoutqa_leaf(out)
    except MissingDependencyError as e:
        require(False, str(e))
    return out, n


def test_writes_the_standard_layout_with_every_judged_doc_in_the_corpus(fq_dir):
    root, n = fq_dir
    assert n == {"n_docs": 10033, "n_queries": 540, "n_qa": 491, "n_qa_answerable": 75}
    data = load_beir(root)
    docs = load_corpus(root)
    ids = {d.id for d in docs}
    assert len(data.queries) == 540 and len(ids) == 10033
    assert all(len(rel) == 1 and set(rel) <= ids for rel in data.qrels.values())
    assert not any(any(c.isspace() for c in i) for i in ids)  # TREC runs are whitespace-separated
    star = [q for q, t in data.queries.items() if "Star Wars films" in t][0]
    assert data.qrels[star] == {"Star_Wars": 1}
    assert next(d for d in docs if d.id == "Star_Wars").title == "Star Wars"


def test_trec_run_round_trips_the_ids(fq_dir, tmp_path):
    root, _ = fq_dir
    data = load_beir(root)
    run = {q: [(d, 1.0)] for q, rel in list(data.qrels.items())[:20] for d in rel}
    back = read_trec_run(write_trec_run(run, tmp_path / "run.trec", "t"))
    assert {q: list(v) for q, v in back.items()} == {q: [d for d, _ in v] for q, v in run.items()}


def test_cli_data_command(tmp_path, capsys, fq_dir):
    assert main(["data", "fanoutqa-leaf", "--out", str(tmp_path / "fq"), "--json"]) == 0
    obj = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert obj["n_queries"] == 540 and obj["n_docs"] == 10033
    assert (tmp_path / "fq" / "corpus.jsonl").read_bytes() == (fq_dir[0] / "corpus.jsonl").read_bytes()


def test_2cr_reproduces_fanoutqa_leaf_bm25_and_its_ltr_row(tmp_path, fq_dir, capsys):
    """eval/2cr/beir.yaml's FanOutQA-leaf BM25 and BM25 + bundled LTR rows, written from the packages and indexed
    from scratch (~20 s), through the `adarag eval 2cr` command."""
    import json

    from services.cli import main

    rc = main(["eval", "2cr", "--only", "fanoutqa-leaf-bm25,fanoutqa-leaf-bm25+ltr", "--work", str(tmp_path / "w"),
               "--out", str(tmp_path / "r"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["fail"] == 0 and len(out["grades"]) == 8, out["grades"]
    assert {g["grade"] for g in out["grades"]} == {"OK"}
    assert "| fanoutqa-leaf-bm25+ltr |" in (tmp_path / "r" / "2cr.md").read_text()


@pytest.mark.slow
def test_2cr_reproduces_fanoutqa_leaf_dense_and_fused(tmp_path, fq_dir):
    """Dense / fused rows: embeds 10,033 summaries with minilm-bf16 (minutes)."""
    from eval.beir import check_2cr, format_grades

    grades = check_2cr(only=["fanoutqa-leaf-dense", "fanoutqa-leaf-fused"], work_dir=tmp_path)
    assert all(g.grade == "OK" for g in grades), "\n" + format_grades(grades)


def test_qa_jsonl_is_the_shared_layout_over_the_corpus_ids(fq_dir):
    from eval.qa_data import load_qa

    root, n = fq_dir
    ids = {d.id for d in load_corpus(root)}
    qa = load_qa(root / "qa.jsonl")
    answerable = load_qa(root / "qa-answerable.jsonl")
    assert len(qa) == n["n_qa"] and len(answerable) == n["n_qa_answerable"]
    assert {ex.id for ex in answerable} <= {ex.id for ex in qa}
    assert all(len(ex.answers) == 1 and ex.supporting_ids and set(ex.supporting_ids) <= ids for ex in qa)
    from indexers.text import plain_words

    docs = {d.id: plain_words(d.text) for d in load_corpus(root)}
    assert all(plain_words(ex.answers[0]) in docs[ex.supporting_ids[0]] for ex in answerable)
    assert sum(plain_words(ex.answers[0]) in docs[ex.supporting_ids[0]] for ex in qa) == len(answerable)
