import pytest

from indexers.dense import DenseParams
from indexers.embedders import HashEmbedder
from indexers.index import BuildParams, build_index, open_index
from indexers.types import Document
from tests.prereq import require


def _docs(n, prefix="d"):
    return [Document(id=f"{prefix}{i}", title=f"Title {i}", text=f"document number {i} about topic{i % 7}")
            for i in range(n)]


def test_built_index_opens_and_finds_the_relevant_passage(hash_index):
    with open_index(hash_index) as ix:
        assert ix.manifest.n_docs == 300 and ix.stores == ("bm25", "dense", "ngram")
        assert len(ix.ids) == ix.manifest.n_passages == ix.bm25.n_docs == len(ix.dense) == ix.ngram.n_docs
        from indexers.text import tokenize

        rows, scores = ix.bm25.search(tokenize("Kiss and Tell 1945 film"), 3)
        assert ix.hits(rows, scores)[0].title == "Kiss and Tell (1945 film)"


@pytest.mark.postgres
def test_index_on_postgresql(tmp_path):
    import os
    import uuid

    url = os.environ.get("ADARAG_TEST_PG_URL")
    if not url:
        require(False, "set ADARAG_TEST_PG_URL (see .ci/postgres.sh) to test PostgreSQL")
    ns = "t" + uuid.uuid4().hex[:12]
    params = BuildParams(stores=("bm25", "dense"), sql_url=url, sql_namespace=ns,
                         dense=DenseParams(embedder="hash", use_gpu=False))
    root = tmp_path / "ix"
    try:
        build_index(_docs(30), root, params, embedder=HashEmbedder(64), progress=False)
        rep = build_index(_docs(2, prefix="pg"), root, embedder=HashEmbedder(64), progress=False)
        assert rep.added == 2
        with open_index(root) as ix:
            assert ix.manifest.n_docs == 32 and ix.store.count_documents() == 32
            rows, scores = ix.bm25.search(["topic3"], 3)
            assert all(h.text.endswith("topic3") for h in ix.hits(rows, scores))
        build_index(_docs(5), root, params, rebuild=True, embedder=HashEmbedder(64), progress=False)
        with open_index(root) as ix:
            assert ix.store.count_documents() == 5
    finally:
        from indexers.sql_store import SQLStore

        SQLStore(url, namespace=ns).drop()


def test_ngram_store_rows_line_up_with_the_other_stores(hash_index):
    with open_index(hash_index) as ix:
        p = ix.store.get_passages([str(ix.ids[7])])[0]
        phrase = " ".join(p.text.split()[3:9])
        rows, offsets = ix.ngram.locate(ix.ngram_tokens(phrase)[1:], limit=50)  # drop the leading-space token
        assert 7 in rows.tolist()
