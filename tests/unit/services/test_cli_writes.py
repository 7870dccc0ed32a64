"""`adarag index` never writes over what is not an index, and tells a busy index apart (issue #16)."""
import json

from indexers.lock import WriteLock
from services.cli import main


def _corpus(path, ids):
    path.write_text("".join(json.dumps({"id": i, "title": i, "text": f"words about {i}"}) + "\n" for i in ids))
    return path


def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_rebuild_into_the_corpus_folder_is_refused_and_keeps_it(tmp_path, capsys):
    """Issue repro 2: `--out` = the input folder with `--rebuild` deleted the corpus."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("# A\nprecious text")
    assert main(["index", str(folder), "--out", str(folder), "--stores", "bm25", "--rebuild", "--json"]) == 2
    assert "inside the index folder" in _last_json(capsys)["error"]
    assert [p.name for p in folder.iterdir()] == ["a.md"]
    c = _corpus(tmp_path / "c.jsonl", ["x"])
    assert main(["index", str(c), "--out", str(folder), "--stores", "bm25", "--rebuild", "--json"]) == 2
    assert "not an adarag index" in _last_json(capsys)["error"]
    assert [p.name for p in folder.iterdir()] == ["a.md"]


def test_a_busy_index_waits_or_fails_naming_the_holder(tmp_path, capsys):
    c = _corpus(tmp_path / "c.jsonl", ["x", "y"])
    out = tmp_path / "ix"
    assert main(["index", str(c), "--out", str(out), "--stores", "bm25", "--json"]) == 0
    capsys.readouterr()
    with WriteLock(out, wait=0):
        assert main(["index", str(c), "--out", str(out), "--stores", "bm25", "--wait", "0.2", "--json"]) == 2
    err = _last_json(capsys)
    assert err["type"] == "IndexBusyError" and "being written by pid" in err["error"]
    assert main(["index", str(c), "--out", str(out), "--stores", "bm25", "--wait", "0", "--json"]) == 0
