import pytest

from services.cli import main


def test_malformed_corpus_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": \n')
    assert main(["index", str(bad), "--out", str(tmp_path / "o"), "--embedder", "hash"]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl" in err and ":2" in err
    assert not (tmp_path / "o").exists()


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("adarag ")
