"""retrievers.rerank.train.ict: ICT examples and groups on a tiny real corpus, qrels groups, and the listwise loss."""
from __future__ import annotations

import random

import pytest

from indexers.errors import ConfigError
from retrievers.rerank.train.ict import (
    ict_example,
    listwise_loss,
    split_sentences,
)


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
