"""`adarag generate`: the JSONL reader's errors, and the command's JSON contract on the tiny bundled model."""
from __future__ import annotations

import json

import pytest

from indexers.errors import ConfigError
from services.cli import main
from services.generate import read_prompts


def _write(path, lines):
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path


def test_read_prompts_both_shapes(tmp_path):
    f = _write(tmp_path / "p.jsonl", [{"id": 1, "prompt": "Say hi."}, "",
                                      {"id": "q", "question": "Who?", "passages": ["Anna built it.",
                                                                                   {"title": "T", "text": "x"}]}])
    a, b = read_prompts(f)
    assert (a.id, a.messages, a.passages) == ("1", "Say hi.", ())
    assert b.passages == ("Anna built it.", "x")
    assert "[1] Anna built it." in b.messages[-1]["content"] and "[2] T: x" in b.messages[-1]["content"]


@pytest.mark.parametrize("line, msg", [
    ("{not json", "p.jsonl:1: not JSON"),
    ({"prompt": "x"}, "needs an \"id\""),
    ({"id": 1}, "non-empty \"prompt\" or \"question\""),
    ({"id": 1, "question": "q", "passages": "text"}, "must be a list"),
    ({"id": 1, "question": "q", "passages": [3]}, "each passage"),
])
def test_read_prompts_errors_name_the_line(tmp_path, line, msg):
    with pytest.raises(ConfigError, match=msg):
        read_prompts(_write(tmp_path / "p.jsonl", [line]))


def test_duplicate_ids_and_empty_files(tmp_path):
    with pytest.raises(ConfigError, match="duplicate id"):
        read_prompts(_write(tmp_path / "p.jsonl", [{"id": 1, "prompt": "a"}, {"id": 1, "prompt": "b"}]))
    with pytest.raises(ConfigError, match="no prompts"):
        read_prompts(_write(tmp_path / "e.jsonl", [""]))


def test_cli_generate_bad_file_exits_2(tmp_path, capsys):
    f = _write(tmp_path / "p.jsonl", [{"id": 1}])
    assert main(["generate", "--prompts", str(f), "--json"]) == 2
    err = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert err["type"] == "ConfigError" and "p.jsonl:1" in err["error"]


def test_draft_flags_accept_only_registered_sources():
    from services.cli import build_parser

    assert build_parser().parse_args(["ask", "ix", "q?", "--draft", "copy+model"]).draft == "copy+model"
    assert build_parser().parse_args(["generate", "--prompts", "p.jsonl"]).draft is None  # the default source
    for argv in (["ask", "ix", "q?", "--draft", "ngram"], ["generate", "--prompts", "p", "--draft", "x"]):
        with pytest.raises(ConfigError, match="argument --draft: invalid choice"):  # main: exit 2 (+ JSON)
            build_parser().parse_args(argv)
