"""retrievers.rerank.train.ict: ICT examples and groups on a tiny real corpus, qrels groups, and the listwise loss."""
from __future__ import annotations


import pytest

from indexers.errors import ConfigError
from indexers.index import open_index
from indexers.ingest import doc_id_of
from retrievers.rerank.train.ict import (
    Group,
    ict_groups,
    qrels_groups,
)
from retrievers.rerank import hit_text


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


