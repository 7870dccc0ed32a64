import json

import pytest

from services.cli import main


def _last_json(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory, small_corpus):
    root = tmp_path_factory.mktemp("cli") / "index"
    assert main(["index", str(small_corpus), "--out", str(root), "--embedder", "hash", "--json"]) == 0
    return root


def test_index_reports_counts(tmp_path, small_corpus, capsys):
    root = tmp_path / "ix"
    assert main(["index", str(small_corpus), "--out", str(root), "--embedder", "hash", "--stores", "bm25",
                 "--json"]) == 0
    obj = _last_json(capsys)
    assert obj["n_docs"] == 300 and obj["added"] == 300 and obj["stores"] == ["bm25"]
    # indexing the same corpus again adds nothing and re-embeds nothing
    assert main(["index", str(small_corpus), "--out", str(root), "--json"]) == 0
    obj = _last_json(capsys)
    assert (obj["added"], obj["updated"], obj["unchanged"]) == (0, 0, 300)


def test_search_json_contract(cli_index, capsys):
    for store in ("bm25", "dense", "ngram", "fused", "bm25+ngram", "bm25+dense+ngram"):
        assert main(["search", str(cli_index), "Shirley Temple", "--store", store, "-k", "3", "--json"]) == 0
        hits = _last_json(capsys)["hits"]
        assert len(hits) == 3 and set(hits[0]) == {"id", "doc_id", "score", "title", "text", "start", "end"}  # Hit.to_dict
    assert main(["search", str(cli_index), "Shirley Temple", "--store", "bm25", "--json"]) == 0
    assert _last_json(capsys)["hits"][0]["title"] == "Shirley Temple"


def test_search_filter_keeps_only_matching_documents(cli_index, capsys):
    assert main(["search", str(cli_index), "Shirley Temple", "--store", "bm25", "-k", "50", "--json"]) == 0
    free = [h["id"] for h in _last_json(capsys)["hits"]]
    f = json.dumps({"field": "id", "operator": "!=", "value": free[0]})
    assert main(["search", str(cli_index), "Shirley Temple", "--store", "bm25", "-k", "4", "--filter", f,
                 "--json"]) == 0
    assert [h["id"] for h in _last_json(capsys)["hits"]] == free[1:5]
    assert main(["search", str(cli_index), "Shirley Temple", "--filter", "{year: 2000}", "--json"]) == 2
    assert "not JSON" in _last_json(capsys)["error"]
    bad = json.dumps({"field": "meta.year", "operator": "~", "value": 1})
    assert main(["search", str(cli_index), "Shirley Temple", "--filter", bad, "--json"]) == 2
    assert "operator" in _last_json(capsys)["error"]


def test_search_queries_writes_a_trec_run(cli_index, tmp_path, capsys):
    q = tmp_path / "queries.jsonl"
    q.write_text('{"_id": "q1", "text": "Shirley Temple"}\n\n{"_id": "q2", "text": "Corliss Archer radio"}\n')
    run = tmp_path / "run.trec"
    assert main(["search", str(cli_index), "--queries", str(q), "--store", "bm25", "-k", "5",
                 "--run-out", str(run), "--json"]) == 0
    assert _last_json(capsys)["n_queries"] == 2
    lines = [ln.split() for ln in run.read_text().splitlines()]
    assert lines[0][:2] == ["q1", "Q0"] and {ln[0] for ln in lines} == {"q1", "q2"}
    for qid in ("q1", "q2"):
        mine = [ln for ln in lines if ln[0] == qid]
        assert 1 <= len(mine) <= 5 and [int(ln[3]) for ln in mine] == list(range(1, len(mine) + 1))
        assert all(float(a[4]) >= float(b[4]) for a, b in zip(mine, mine[1:]))


@pytest.mark.parametrize("argv, msg", [
    (["search", "{idx}", ""], "empty"),
    (["search", "{idx}", "x" * 100_000], "over the limit"),
    (["search", "{idx}", "q", "--store", "dense", "-k", "0"], "-k: must be an integer from 1"),
    (["search", "{tmp}/missing", "q"], "no index at"),
    (["index", "{tmp}/nope.jsonl", "--out", "{tmp}/o"], "does not exist"),
])
def test_bad_input_exits_2_with_a_message(cli_index, tmp_path, capsys, argv, msg):
    argv = [a.format(idx=cli_index, tmp=tmp_path) for a in argv]
    assert main(argv + ["--json"]) == 2
    captured = capsys.readouterr()
    assert msg in captured.err and json.loads(captured.out.strip().splitlines()[-1])["error"]


def test_search_ngram_store_finds_the_passage(cli_index, capsys):
    assert main(["search", str(cli_index), "Shirley Temple Black", "--store", "ngram", "-k", "3", "--json"]) == 0
    assert _last_json(capsys)["hits"][0]["title"] == "Shirley Temple"


def test_ngram_command_contract(cli_index, capsys):
    assert main(["ngram", str(cli_index), "Shirley Temple", "--json"]) == 0
    obj = _last_json(capsys)
    assert set(obj) >= {"tokens", "count", "locations", "continuations"}
    assert obj["count"] >= 1 and len(obj["locations"]) == min(obj["count"], 100)
    assert all(isinstance(pid, str) and isinstance(off, int) for pid, off in obj["locations"])
    assert sum(c for _, c in obj["continuations"]) <= obj["count"]
    assert " Black" in [t for t, _ in obj["continuations"]]
    assert main(["ngram", str(cli_index), "zzqx unseen phrase zzqx", "--json"]) == 0
    obj = _last_json(capsys)
    assert obj["count"] == 0 and obj["locations"] == [] and obj["continuations"] == []


def test_eval_beir_command(tmp_path, hotpot_dir, capsys):
    """The CLI reproduces the 2CR BM25 row for the bundled HotpotQA data (eval/2cr/beir.yaml)."""
    idx = tmp_path / "beir-bm25"
    assert main(["index", str(hotpot_dir / "corpus.jsonl"), "--out", str(idx), "--stores", "bm25", "--json"]) == 0
    capsys.readouterr()
    out = tmp_path / "run"
    assert main(["eval", "beir", "--data", str(hotpot_dir), "--index", str(idx), "--config", "bm25",
                 "--out", str(out), "--json"]) == 0
    m = _last_json(capsys)
    assert m["n_queries"] == 300 and round(m["ndcg@10"], 4) == 0.7928 and round(m["recall@100"], 4) == 0.9783
    assert (out / "run.trec").exists() and (out / "report.html").exists()


def test_search_queries_file_errors_name_the_line(cli_index, tmp_path, capsys):
    q = tmp_path / "queries.jsonl"
    q.write_text('{"_id": "q1", "text": "Shirley Temple"}\n{"_id": "q1", "text": "again"}\n')
    assert main(["search", str(cli_index), "--queries", str(q), "--run-out", str(tmp_path / "r.trec")]) == 2
    assert "queries.jsonl:2" in capsys.readouterr().err


def test_ask_mode_flag_runs_that_mode_and_auto_traces_the_controller(cli_index, capsys):
    base = ["ask", str(cli_index), "Who was Shirley Temple?", "--generator", "smollm-135m", "--threads", "1",
            "--store", "bm25", "-k", "1", "--max-new-tokens", "4", "--json"]
    assert main(base + ["--mode", "none"]) == 0
    obj = _last_json(capsys)
    assert obj["mode"] == "none" and obj["retrieval_calls"] == 0 and obj["passages"] == []
    assert main(base) == 0  # --mode auto: the controller decides and the trace says so (hash index -> one_shot)
    obj = _last_json(capsys)
    assert obj["trace"][0]["kind"] == "controller" and obj["trace"][0]["mode"] == obj["mode"] == "one_shot"
    assert main(base + ["--mode", "chain"]) == 0
    assert _last_json(capsys)["mode"] == "chain"

