"""The CLI edge on bad input (issue #16): every user-caused failure exits 2 with one message, and with --json
one `{"error", "type"}` object on stdout; anything else is a bug and keeps its traceback (issue #19)."""
import argparse
import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest

from indexers.errors import ConfigError
from services import cli
from services.cli import MAX_COUNT, bounded_int, main

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-bad")
    corpus = d / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "title": f"Doc {i}", "text": f"word{i} shared text {i}"})
                              + "\n" for i in range(40)))
    assert main(["index", str(corpus), "--out", str(d / "ix"), "--stores", "bm25", "--json"]) == 0
    return d / "ix"


def _json_error(capsys):
    captured = capsys.readouterr()
    err = json.loads(captured.out.strip().splitlines()[-1])
    assert set(err) == {"error", "type"} and err["error"] in captured.err
    return err


def test_bounded_int_parses_and_refuses():
    parse = bounded_int(1, 10)
    assert parse("1") == 1 and parse(" 10 ") == 10
    for text in ("0", "11", "-3", "2.5", "ten", "", "1" * 5_000, "1" + "0" * 30):
        with pytest.raises(argparse.ArgumentTypeError, match="must be an integer from 1 to 10"):
            parse(text)


@pytest.mark.parametrize("flags, words", [
    (["-k", "1" + "0" * 30], "argument -k: must be an integer from 1 to 100,000"),  # was an OverflowError traceback
    (["-k", "9" * 5_000], "argument -k: must be an integer from 1 to 100,000"),  # was Python's int-limit message
    (["-k", "0"], "argument -k: must be an integer from 1"),
    (["--threads", "0"], "argument --threads: must be an integer from 1 to 1,024"),
    (["--threads", "4096"], "argument --threads: must be an integer from 1 to 1,024"),
    (["--threads", "two"], "argument --threads"),
    (["--max-query-chars", "-1"], "argument --max-query-chars"),
    (["--rerank-depth", str(MAX_COUNT + 1)], "argument --rerank-depth"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_flags_exit_2_with_json(tiny_index, capsys, flags, words):
    assert main(["search", str(tiny_index), "word1", *flags, "--json"]) == 2
    err = _json_error(capsys)
    assert err["type"] == "ConfigError" and words in err["error"] and " --help`" in err["error"]


def test_usage_errors_without_json_print_the_usage(capsys):
    assert main(["search"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("usage: adarag search")
    assert "the following arguments are required: index" in captured.err


def test_a_missing_subcommand_is_a_json_error_too(capsys):
    assert main(["--json"]) == 2
    assert "required: command" in _json_error(capsys)["error"]


def test_search_without_a_query_is_a_json_config_error(tiny_index, capsys):
    assert main(["search", str(tiny_index), "--json"]) == 2  # was exit 1 with no JSON
    err = _json_error(capsys)
    assert err["type"] == "ConfigError" and "give either a query" in err["error"]
    assert main(["search", str(tiny_index), "--queries", str(tiny_index / "q.jsonl"), "--json"]) == 2
    assert "--run-out" in _json_error(capsys)["error"]


def test_a_bad_shard_is_a_usage_error(capsys, tmp_path):
    for shard in ("x/y", "3/2", "1/0", "-1/2", "1" * 5_000 + "/2"):
        assert main(["controller", "collect", "--data", str(tmp_path), "--index", str(tmp_path), "--out",
                     str(tmp_path), f"--shard={shard}", "--json"]) == 2
        assert "argument --shard: must be I/N" in _json_error(capsys)["error"]


def test_a_run_file_under_a_file_names_the_path(tiny_index, tmp_path, capsys):
    q = tmp_path / "q.jsonl"
    q.write_text('{"_id": "q1", "text": "word1"}\n')
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    assert main(["search", str(tiny_index), "--queries", str(q), "--run-out", str(blocker / "run.trec"),
                 "--json"]) == 2  # was a FileExistsError / NotADirectoryError traceback
    err = _json_error(capsys)
    assert str(blocker) in err["error"] and ("choose another path" in err["error"] or "fix the path" in err["error"])


def test_a_full_disk_is_exit_2_with_the_fix(tiny_index, tmp_path):
    """`ulimit -f` as the probe simulated a full disk: the ~300 KB run file cannot grow past 64 KiB (SQLite's
    shared-memory file, 32 KiB, still fits)."""
    q = tmp_path / "q.jsonl"
    q.write_text("".join(json.dumps({"_id": f"q{i}", "text": f"word{i % 40} shared"}) + "\n" for i in range(200)))
    run = tmp_path / "run.trec"
    cmd = (f"ulimit -f 64; exec {sys.executable} -m services.cli search {tiny_index} --queries {q} "
           f"--run-out {run} --store bm25 -k 40 --json")
    p = subprocess.run(["bash", "-c", cmd], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    err = json.loads(p.stdout.strip().splitlines()[-1])
    assert err["type"] == "OSError" and err["error"].startswith(f"File too large: {str(run)!r}: ")
    assert "ulimit -f" in err["error"]
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize("exc, kind, words", [
    (OSError(errno.ENOSPC, "No space left on device"), "OSError", "free some disk space"),
    (PermissionError(errno.EACCES, "Permission denied", "/srv/idx"), "PermissionError", "'/srv/idx': check its"),
    (RecursionError("maximum recursion depth exceeded"), "RecursionError", "nested too deeply"),
    (OverflowError("Python int too large to convert to C ssize_t"), "OverflowError", "pass a smaller value"),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "UnicodeDecodeError", "not UTF-8"),
])
def test_user_caused_failures_are_one_message(monkeypatch, capsys, tiny_index, exc, kind, words):
    def boom(a):
        raise exc

    monkeypatch.setattr(cli, "_cmd_search", boom)
    assert main(["search", str(tiny_index), "q", "--json"]) == 2
    err = _json_error(capsys)
    assert err["type"] == kind and words in err["error"]


@pytest.mark.parametrize("exc", [ValueError("a bug"), TypeError("a bug"), KeyError("a bug"),
                                 OSError(errno.EIO, "Input/output error")])
def test_a_bug_keeps_its_traceback(monkeypatch, tiny_index, exc):
    """Issue #19: a TypeError or ValueError that is not adarag's own error is not reported as bad input."""
    def boom(a):
        raise exc

    monkeypatch.setattr(cli, "_cmd_search", boom)
    with pytest.raises(type(exc)):
        main(["search", str(tiny_index), "q", "--json"])


def test_config_errors_still_exit_2(tiny_index, capsys):
    assert main(["search", str(tiny_index), "q", "--store", "dense", "--json"]) == 2
    err = _json_error(capsys)
    assert err["type"] == "ConfigError" and "no dense store" in err["error"]
    assert issubclass(ConfigError, ValueError)  # a RagError that is also a ValueError, as before


def test_a_bad_rerank_spec_fails_before_the_index_opens(tiny_index, capsys, monkeypatch):
    import rag.sdk

    monkeypatch.setattr(rag.sdk.RAG, "open", classmethod(lambda *a, **k: pytest.fail("opened the index first")))
    assert main(["search", str(tiny_index), "word1", "--rerank", "bogus-kind", "--json"]) == 2
    assert _json_error(capsys)["type"] == "ConfigError"
