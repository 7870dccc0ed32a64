"""QA loaders (KILT, HotpotQA/2Wiki, MuSiQue, JSONL, the shared layout), their errors, and the corpus converter."""
from __future__ import annotations


import pytest

from eval.qa_data import (
    context_documents,
    load_qa,
)
from indexers.errors import ConfigError, CorpusError
from indexers.ingest import read_corpus


def test_shared_hotpot_layout(hotpot_dir):
    exs = load_qa(hotpot_dir / "qa.jsonl", limit=5)
    assert exs[0].answers == ("Chief of Protocol",)
    assert exs[0].supporting_ids == ("hp00001", "hp00006") and len(exs[0].context_ids) == 10


def test_converter_with_context_ids_needs_a_corpus(hotpot_dir):
    exs = load_qa(hotpot_dir / "qa.jsonl", limit=2)
    with pytest.raises(ConfigError, match="corpus="):
        context_documents(exs)
    corpus = {}
    for d in read_corpus(hotpot_dir / "corpus.jsonl"):
        corpus[d.id] = d
        if len(corpus) >= 40:
            break
    docs = context_documents(exs, corpus)
    assert [d.id for d in docs[:2]] == ["hp00000", "hp00001"] and len(docs) == 20
    with pytest.raises(CorpusError, match="not in the given corpus"):
        context_documents(exs, {k: v for k, v in corpus.items() if k != "hp00001"})
