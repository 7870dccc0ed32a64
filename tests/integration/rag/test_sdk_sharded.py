"""RAG over a sharded index: the same search hits and the same answer as over one index of the same corpus."""
import pytest

from indexers.dense import DenseParams
from indexers.embedders import HashEmbedder
from indexers.index import BuildParams
from indexers.ingest import read_corpus
from indexers.shards import build_sharded
from rag import RAG


@pytest.fixture(scope="module")
def sharded_index(tmp_path_factory, small_corpus):
    """The hash_index corpus and params, in 3 shards."""
    root = tmp_path_factory.mktemp("sharded") / "index"
    build_sharded(read_corpus([small_corpus]), root, 3, BuildParams(dense=DenseParams(embedder="hash")),
                  embedder=HashEmbedder(64))
    return root


def test_ask_over_shards_equals_ask_over_one_index(hash_index, sharded_index):
    q = "Shirley Temple Black was born on what date?"
    with RAG.open(hash_index, generator="smollm-135m", threads=2) as one, \
            RAG.open(sharded_index, generator="smollm-135m", threads=2) as sh:
        assert sh.search(q, k=8).hits == one.search(q, k=8).hits  # fused: bm25 + dense
        a, b = one.ask(q, max_new_tokens=16), sh.ask(q, max_new_tokens=16)
    assert b.answer == a.answer and b.citations == a.citations and b.mode == a.mode
    assert [h.id for h in b.passages] == [h.id for h in a.passages] and a.passages[0].title == "Shirley Temple"


def test_add_and_delete_through_rag_route_to_the_shards(sharded_index, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(sharded_index, root)
    with RAG.open(root, generator="smollm-135m") as r:
        r.add_documents([{"id": "n1", "title": "Note", "text": "zebrafish quantum lullaby"}])
        assert r.search("zebrafish lullaby", store="bm25", k=1).hits[0].id == "n1"
        assert r.get_document("n1").title == "Note"
        assert r.delete_documents(["n1"]) == 1
        assert r.get_document("n1") is None
