"""`adarag index --shards N`, then search and delete on the sharded index (in-process; Ray: tests/integration/indexers/shards)."""
import json

from services.cli import main


def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_sharded_index_search_and_delete(tmp_path, capsys):
    c = tmp_path / "c.jsonl"
    c.write_text("".join(json.dumps({"id": f"d{i}", "title": f"t{i}", "text": f"words about topic{i % 5} {i}"}) + "\n"
                         for i in range(30)))
    for out in ("one", "sharded"):
        extra = ["--shards", "3"] if out == "sharded" else []
        assert main(["index", str(c), "--out", str(tmp_path / out), "--stores", "bm25", "--json", *extra]) == 0
        assert _last_json(capsys)["n_docs"] == 30
    hits = {}
    for out in ("one", "sharded"):
        assert main(["search", str(tmp_path / out), "topic3 words", "--store", "bm25", "-k", "5", "--json"]) == 0
        hits[out] = [(h["id"], h["score"]) for h in _last_json(capsys)["hits"]]
    assert hits["one"] == hits["sharded"] and len(hits["one"]) == 5
    assert main(["delete", str(tmp_path / "sharded"), "d3", "d8", "nope", "--json"]) == 0
    assert _last_json(capsys)["deleted"] == 2
    assert main(["index", str(c), "--out", str(tmp_path / "sharded"), "--shards", "4", "--json"]) == 2
    assert "--rebuild" in _last_json(capsys)["error"]
    assert main(["search", str(tmp_path / "one"), "x", "--ray", "local", "--json"]) == 2
    assert "not a sharded index" in _last_json(capsys)["error"]
