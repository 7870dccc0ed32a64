"""collect with a scripted generator and retriever in place of RAG.open: batched groups write the same records as
one question at a time, and a rerun resumes (adds nothing)."""
from __future__ import annotations

import json
import zlib
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

import rag.sdk
from eval.collect import collect
from indexers.errors import ConfigError
from indexers.types import Hit


@dataclass(frozen=True)
class Gen:
    text: str
    n_prompt_tokens: int
    n_new_tokens: int = 2
    seconds: float = 0.0


class _Generator:
    """Replies depend only on the prompt: a closed-book prompt answers 'Paris', a grounded one names its first
    passage's title, a reasoning step repeats itself (so iterative/chain stop after a step)."""

    def __init__(self):
        self.batches = []

    def generate(self, messages, max_new_tokens):
        content = messages[-1]["content"]
        titles = [t for t in ("Alpha", "Beta") if t in content]
        text = titles[0] if titles else "Paris"
        return Gen(text, len(content))

    def generate_batch(self, prompts, max_new_tokens, *, batch_size):
        self.batches.append(len(prompts))
        return [self.generate(p, max_new_tokens) for p in prompts]


class _Rag:
    def __init__(self):
        self.generator = _Generator()

    def evidence(self, query, k):
        title = "Alpha" if "a" in query.split()[0].lower() else "Beta"
        return [Hit(id=title.lower(), score=1.0, title=title, text=f"{title} is the answer.")][:k]


@pytest.fixture
def fake_rag(monkeypatch):
    opened = []

    @contextmanager
    def open_(index, generator, threads):
        opened.append(_Rag())
        yield opened[-1]

    monkeypatch.setattr(rag.sdk.RAG, "open", staticmethod(open_))
    return opened


def _qa(tmp_path, n=7):
    path = tmp_path / "qa.jsonl"
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"q{i}", "question": f"{'What' if i % 2 else 'Who'} is thing {i}?",
                                "answers": ["Alpha" if i % 3 else "Paris"], "supporting_ids": []}) + "\n")
    return path


def _records(path):
    out = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        for arm in rec["arms"].values():
            arm.pop("seconds")  # wall time: the only field that may differ
        out[rec["id"]] = rec
    return out


def test_batched_collect_writes_the_same_records_and_resumes(tmp_path, fake_rag):
    qa = _qa(tmp_path)
    one = collect(qa, tmp_path / "idx", tmp_path / "one", progress=False)
    grouped = collect(qa, tmp_path / "idx", tmp_path / "grouped", progress=False, batch=3)
    assert one["added"] == grouped["added"] == 7
    a, b = _records(tmp_path / "one" / "outcomes-0of1.jsonl"), _records(tmp_path / "grouped" / "outcomes-0of1.jsonl")
    assert a == b and set(a) == {f"q{i}" for i in range(7)}
    assert fake_rag[0].generator.batches == [] and fake_rag[1].generator.batches == [3, 3, 3, 3, 1, 1]
    rec = a["q0"]
    assert list(rec["arms"]) == ["none", "one_shot", "iterative", "chain"]
    assert rec["arms"]["none"]["em"] == 1.0 and rec["arms"]["none"]["retrieval_calls"] == 0
    assert rec["arms"]["one_shot"]["passages"] == ["beta"]  # "Who": first word without an "a"
    again = collect(qa, tmp_path / "idx", tmp_path / "grouped", progress=False, batch=3)
    assert again["added"] == 0 and again["n"] == 7


def test_shards_split_the_questions(tmp_path, fake_rag):
    qa = _qa(tmp_path)
    got = [collect(qa, tmp_path / "i", tmp_path / "c", shard=(s, 2), batch=2, progress=False)["added"]
           for s in (0, 1)]
    assert sum(got) == 7
    assert got[0] == sum(zlib.crc32(f"q{i}".encode()) % 2 == 0 for i in range(7))


def test_bad_batch_is_a_config_error(tmp_path, fake_rag):
    with pytest.raises(ConfigError, match="batch must be an int >= 0"):
        collect(_qa(tmp_path), tmp_path / "i", tmp_path / "c", batch=-1, progress=False)


def test_cli_collect_batch_prints_json(tmp_path, fake_rag, capsys):
    from services.cli import main

    assert main(["controller", "collect", "--data", str(_qa(tmp_path)), "--index", str(tmp_path / "i"),
                 "--out", str(tmp_path / "c"), "--batch", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["added"] == 7
    assert fake_rag[0].generator.batches == [4, 4, 3, 3]
