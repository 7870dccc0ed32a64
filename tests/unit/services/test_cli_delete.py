"""`adarag delete`: removes documents atomically, never creates an index, says what it did not find."""
import json

from services.cli import main


def _out(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_delete_by_args_and_file(tmp_path, capsys):
    c = tmp_path / "c.jsonl"
    c.write_text("".join(json.dumps({"id": f"d{i}", "text": f"words {i}"}) + "\n" for i in range(6)))
    ix = tmp_path / "ix"
    assert main(["index", str(c), "--out", str(ix), "--stores", "bm25", "--json"]) == 0
    capsys.readouterr()
    assert main(["delete", str(ix), "d0", "d1", "nope", "--json"]) == 0
    out = _out(capsys)
    assert (out["deleted"], out["not_found"], out["n_docs"]) == (2, 1, 4)
    f = tmp_path / "ids.txt"
    f.write_text("d2\n\nd3\n")
    assert main(["delete", str(ix), "--ids-file", str(f), "--json"]) == 0
    assert _out(capsys)["n_docs"] == 2
    assert main(["search", str(ix), "words", "--json"]) == 0
    assert {h["id"].split("#")[0] for h in _out(capsys)["hits"]} == {"d4", "d5"}


def test_delete_needs_ids_and_an_index(tmp_path, capsys):
    assert main(["delete", str(tmp_path / "none"), "x", "--json"]) == 2
    assert "no index at" in _out(capsys)["error"] and not (tmp_path / "none").exists()
    assert main(["delete", str(tmp_path / "none"), "--json"]) == 2
    assert "name the documents" in _out(capsys)["error"]
