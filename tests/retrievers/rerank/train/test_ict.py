"""retrievers.rerank.train.ict: ICT examples and groups on a tiny real corpus, qrels groups, and the listwise loss."""
from __future__ import annotations

import random

import pytest

from indexers.errors import ConfigError
from indexers.index import open_index
from indexers.ingest import doc_id_of
from retrievers.rerank.train.ict import (
    Group,
    ict_example,
    ict_groups,
    listwise_loss,
    qrels_groups,
    split_sentences,
)
from retrievers.rerank import hit_text


def test_split_sentences():
    assert split_sentences("Paris is big. It has 2 million people! Is it old? \"Yes.\" (Very.)") == [
        "Paris is big.", "It has 2 million people!", "Is it old?", "\"Yes.\"", "(Very.)"]
    assert split_sentences("  ") == []
    assert split_sentences("version 2.5 of x") == ["version 2.5 of x"]


def test_ict_example_removes_the_query_sentence_from_the_positive():
    text = "Ada Lovelace was an English mathematician. She wrote the first published algorithm for a machine. Hi."
    seen = set()
    for seed in range(20):
        query, positive = ict_example("Ada Lovelace", text, random.Random(seed))
        assert query in split_sentences(text) and len(query.split()) >= 5
        assert query not in positive
        assert positive.startswith("Ada Lovelace: ")  # as prompts and rerankers show a passage
        assert "Hi." in positive  # the other sentences stay
        seen.add(query)
    assert len(seen) == 2  # both long sentences get picked, never the short one
    assert ict_example("t", "One sentence only here, nothing else to keep", random.Random(0)) is None
    assert ict_example("t", "Too short. Also short.", random.Random(0)) is None
    assert ict_example("t", "Short one here. " + "word " * 31 + "end.", random.Random(0)) is None  # > 30 words


def test_ict_groups_on_a_real_index(hash_index):
    with open_index(hash_index) as ix:
        groups = ict_groups(ix, 12, negatives=3, first_stage="bm25", seed=1)
        assert len(groups) == 12 and len({g.query for g in groups}) == 12
        sources = {}
        for row, pid in enumerate(ix.ids.tolist()):
            h = ix.hits([row], [0.0])[0]
            sources[hit_text(h)] = doc_id_of(str(pid))
        for g in groups:
            assert g.kind == "ict" and len(g.negatives) == 3
            assert g.query not in g.positive
            src = g.qid.split(":")[1]
            neg_docs = [sources[n] for n in g.negatives]  # negatives are real passages of the index
            assert src not in neg_docs and len(set(neg_docs)) == 3  # never the source doc, one passage per doc
            assert g.positive not in g.negatives
        # the first stage's hard negatives share words with the pseudo-query more than random passages do
        overlap = sum(len(set(g.query.lower().split()) & set(g.negatives[0].lower().split())) for g in groups)
        assert overlap > 0
        again = ict_groups(ix, 12, negatives=3, first_stage="bm25", seed=1)
        assert again == groups  # seeded
        with pytest.raises(ConfigError):
            ict_groups(ix, 0)
        with pytest.raises(ConfigError):
            ict_groups(ix, 5, first_stage="nope")


def test_qrels_groups_use_relevant_positives_and_nonrelevant_negatives(hash_index):
    with open_index(hash_index) as ix:
        hits = ix.hits(list(range(6)), [6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
        rel = {hits[1].doc_id: 1, hits[4].doc_id: 1}
        groups = qrels_groups({"q": hits}, {"q": "a question"}, {"q": rel}, ["q"], negatives=3)
        assert len(groups) == 2
        for g in groups:
            assert isinstance(g, Group) and g.query == "a question"
            assert g.positive in {hit_text(hits[1]), hit_text(hits[4])}
            assert g.negatives == (hit_text(hits[0]), hit_text(hits[2]), hit_text(hits[3]))


def test_listwise_loss_decreases_on_a_separable_set():
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, 8, generator=gen)  # 32 groups, positive first, 3 negatives, 8 features
    x[:, 0, 0] += 3.0  # feature 0 separates positives from negatives
    w = torch.zeros(8, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.5)
    losses = []
    for _ in range(30):
        loss = listwise_loss(x @ w)  # [32, 4]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(torch.log(torch.tensor(4.0)).item())  # uniform at w = 0
    assert losses[-1] < 0.3 * losses[0]
    assert int(w.argmax()) == 0
    # a wrong target (a negative as class 0) is not what the loss rewards
    assert listwise_loss(torch.tensor([[5.0, 0.0]])).item() < listwise_loss(torch.tensor([[0.0, 5.0]])).item()
    with pytest.raises(ConfigError):
        listwise_loss(torch.zeros(3))
