"""The service over an index whose document store is PostgreSQL: ingest, search, get, delete (ADARAG_TEST_PG_URL)."""
import os
import uuid

import pytest

pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402
from tests.prereq import needs

PG_URL = os.environ.get("ADARAG_TEST_PG_URL", "")
KEY = "pg-key-0123456789abcdef"


@pytest.mark.postgres
@needs(bool(PG_URL), "PostgreSQL: set ADARAG_TEST_PG_URL (`export ADARAG_TEST_PG_URL=\"$(bash .ci/postgres.sh)\"`)")
def test_ingest_and_search_on_postgresql(tmp_path, small_corpus):
    from indexers.dense import DenseParams
    from indexers.embedders import HashEmbedder
    from indexers.index import BuildParams, build_index
    from indexers.ingest import read_corpus
    from indexers.sql_store import SQLStore
    from rag.sdk import RAG
    from services.app import create_app
    from services.settings import ServiceSettings

    ns = "s" + uuid.uuid4().hex[:12]
    root = tmp_path / "ix"
    params = BuildParams(stores=("bm25", "dense"), sql_url=PG_URL, sql_namespace=ns,
                         dense=DenseParams(embedder="hash"))
    try:
        docs = list(read_corpus([small_corpus]))[:50]
        build_index(docs, root, params, embedder=HashEmbedder(64), progress=False)
        with RAG.open(root, generator="smollm-135m", threads=1) as rag, \
                TestClient(create_app(rag, ServiceSettings(api_keys=(KEY,), warm_up=False))) as c:
            h = {"X-API-Key": KEY}
            r = c.post("/v1/documents", json={"documents": [{"id": "pg-1", "text": "Gnarfle on PostgreSQL."}]},
                       headers=h)
            assert r.status_code == 200 and r.json()["added"] == 1 and r.json()["n_docs"] == 51, r.text
            with SQLStore(PG_URL, namespace=ns) as s:
                assert s.count_documents() == 51
            hits = c.post("/v1/search", json={"query": "gnarfle", "store": "bm25"}, headers=h).json()["hits"]
            assert hits[0]["doc_id"] == "pg-1"
            assert c.get("/v1/documents/pg-1", headers=h).json()["text"] == "Gnarfle on PostgreSQL."
            assert c.delete("/v1/documents/pg-1", headers=h).json() == {"deleted": 1}
            assert c.get("/v1/documents/pg-1", headers=h).status_code == 404
    finally:
        SQLStore(PG_URL, namespace=ns).drop()
