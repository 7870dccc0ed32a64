"""Metadata filters: evaluated by the SQL store into a row mask that every store honours exactly (the filtered
top-k is the unfiltered ranking without the non-matching passages: no short lists, nothing that does not match)."""
import numpy as np
import pytest

from indexers.dense import DenseParams
from indexers.embedders import HashEmbedder
from indexers.errors import ConfigError
from indexers.index import BuildParams, build_index, open_index
from indexers.types import Document
from retrievers.search import Retriever

_WORDS = "river city capital museum paris berlin sea salt water cats sleep france germany".split()
_EMB = HashEmbedder(32)
FILTERS = [
    {"field": "meta.year", "operator": ">=", "value": 2005},
    {"field": "meta.topic", "operator": "in", "value": ["geo", "food"]},
    {"operator": "AND", "conditions": [{"field": "meta.year", "operator": "<", "value": 2010},
                                       {"field": "meta.topic", "operator": "!=", "value": "geo"}]},
    {"operator": "NOT", "conditions": [{"field": "meta.topic", "operator": "==", "value": "cats"}]},
    {"field": "id", "operator": "in", "value": ["d3", "d7", "d40"]},
    {"field": "meta.year", "operator": ">", "value": 3000},  # nothing matches
]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    rng = np.random.default_rng(0)
    docs = [Document(id=f"d{i}", title="", metadata={"year": 2000 + i % 15, "topic": ["geo", "food", "cats"][i % 3]},
                     text=" ".join(_WORDS[j] for j in rng.integers(0, len(_WORDS), int(rng.integers(3, 30)))))
            for i in range(60)]
    root = tmp_path_factory.mktemp("filters") / "ix"
    params = BuildParams(stores=("bm25", "dense", "ngram"), passage_words=10, passage_overlap=2, segment_passages=40,
                         dense=DenseParams(embedder="hash", use_gpu=False))
    build_index(docs, root, params, embedder=_EMB, progress=False)
    build_index([], root, delete=["d5", "d6"], embedder=_EMB, progress=False)  # segments with deletions
    return root


def _matches(doc, f):
    if f.get("conditions") is not None:
        got = [_matches(doc, c) for c in f["conditions"]]
        return {"AND": all(got), "OR": any(got), "NOT": not all(got)}[f["operator"]]
    v = doc.id if f["field"] == "id" else doc.metadata.get(f["field"].split(".", 1)[1])
    ops = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
           ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
           "in": lambda a, b: a in b, "not in": lambda a, b: a not in b}
    return ops[f["operator"]](v, f["value"])


@pytest.mark.parametrize("store", ["bm25", "dense", "ngram", "bm25+dense"])
def test_a_filtered_search_is_the_full_ranking_without_the_non_matching(root, store):
    with open_index(root) as ix:
        ix.encoders._embedder = _EMB
        r = Retriever(ix)
        docs = {d.id: d for d in ix.store.get_documents([f"d{i}" for i in range(60) if i not in (5, 6)])}
        for f in FILTERS:
            for q in ("capital city", "salt water sea", "cats sleep"):
                full_rows, _ = r.rows_batch([q], store, 1000)[0]
                ok = [row for row in full_rows.tolist() if _matches(docs[str(ix.ids[row]).split("#")[0]], f)]
                for k in (1, 5, 50):
                    rows, scores = r.rows_batch([q], store, k, filters=f)[0]
                    if "+" not in store:  # fusion re-ranks each store's own filtered top-depth
                        assert rows.tolist() == ok[:k], (f, q, k)
                    assert all(_matches(docs[str(ix.ids[row]).split("#")[0]], f) for row in rows.tolist())
                    assert len(rows) == min(k, len(ok)) or "+" in store


def test_bad_filters_are_clear_errors(root):
    with open_index(root) as ix:
        r = Retriever(ix)
        for bad in ({"field": "meta.year", "operator": "~", "value": 1}, {"operator": "AND"}, ["not", "a dict"]):
            with pytest.raises(ConfigError):
                r.rows_batch(["capital"], "bm25", 5, filters=bad)
