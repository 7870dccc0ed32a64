"""eval/mixed.py on six tiny synthetic sets: a stratified, interleaved mix tagged by set, the controller split
respected, one corpus; the QA runner breaks metrics down per set."""
from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

import pytest

from eval.collect import split_of
from eval.mixed import DATASETS, HOPS, mixed_examples, write_mixed
from eval.qa_data import load_qa
from eval.qa_runner import run_qa
from indexers.errors import ConfigError, CorpusError
from indexers.types import Hit


@pytest.fixture()
def root(tmp_path):
    for name in DATASETS:
        d = tmp_path / name
        d.mkdir()
        with open(d / "qa.jsonl", "w") as f:
            for i in range(20):
                f.write(json.dumps({"id": f"{name}-q{i}", "question": f"{name} question {i}?",
                                    "answers": [f"{name}{i}"], "supporting_ids": [f"{name}-p{i}"]}) + "\n")
        with open(d / "corpus.jsonl", "w") as f:
            for i in range(5):
                f.write(json.dumps({"_id": f"{name}-p{i}", "title": "", "text": f"{name} paragraph {i}"}) + "\n")
    return tmp_path


def test_the_mix_is_stratified_interleaved_and_tagged(root):
    exs = mixed_examples(root, per_dataset=4)
    assert len(exs) == 24 and Counter(e.dataset for e in exs) == {d: 4 for d in DATASETS}
    assert [e.dataset for e in exs[:6]] == list(DATASETS)  # interleaved: a run stopped early stays balanced
    assert all(e.id.startswith(e.dataset) for e in exs)
    assert mixed_examples(root, per_dataset=4) == exs  # deterministic
    train = mixed_examples(root, part="train")
    held = mixed_examples(root, part="heldout")
    assert {e.id for e in train} | {e.id for e in held} == {e.id for e in mixed_examples(root)}
    assert all(split_of(e.id) == "heldout" for e in held) and not {e.id for e in train} & {e.id for e in held}
    assert set(HOPS.values()) == {"single", "multi"}


def test_write_mixed_writes_one_corpus_and_a_tagged_qa_file(root, tmp_path):
    n = write_mixed(tmp_path / "out", root, per_dataset=2)
    assert n["n_docs"] == 30 and n["n_questions"] == 12 and n["per_dataset"] == {d: 2 for d in DATASETS}
    back = load_qa(tmp_path / "out" / "qa.jsonl")
    assert [e.dataset for e in back] == [e.dataset for e in mixed_examples(root, per_dataset=2)]
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_bad_arguments_and_missing_sets_are_clear_errors(root, tmp_path):
    with pytest.raises(ConfigError, match="part"):
        mixed_examples(root, part="test")
    with pytest.raises(ConfigError, match="unknown dataset 'boolq'"):
        mixed_examples(root, datasets=("boolq",))
    with pytest.raises(ConfigError):
        mixed_examples(root, per_dataset=0)
    (root / "nq" / "qa.jsonl").unlink()
    with pytest.raises(CorpusError, match="lacks qa.jsonl"):
        mixed_examples(root)


def test_the_runner_breaks_metrics_down_per_set(root, tmp_path):
    exs = mixed_examples(root, per_dataset=3)
    right = {"squad", "hotpotqa"}

    def answer(q):
        name, i = q.split()[0], q.split()[2].rstrip("?")
        return SimpleNamespace(answer=f"{name}{i}" if name in right else "no idea", retrieval_calls=1,
                               passages=[Hit(id=f"{name}-p0", score=1.0, doc_id=f"{name}-p0")])

    m = run_qa(exs, answer, tmp_path / "run", report=False, progress=False)
    assert m["n"] == 18 and m["em"] == pytest.approx(6 / 18)
    assert set(m["by_dataset"]) == set(DATASETS)
    assert {d: r["em"] for d, r in m["by_dataset"].items()} == {d: float(d in right) for d in DATASETS}
    assert all(r["n"] == 3 for r in m["by_dataset"].values())
