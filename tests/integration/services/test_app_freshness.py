"""/readyz and the request path pick up a generation another writer published, or answer 503 Stale."""
import shutil
import time

import pytest

pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from indexers.embedders import HashEmbedder  # noqa: E402
from indexers.index import build_index  # noqa: E402
from indexers.lock import WriteLock  # noqa: E402
from indexers.types import Document  # noqa: E402
from rag.sdk import RAG  # noqa: E402
from services.app import create_app  # noqa: E402
from services.settings import ServiceSettings  # noqa: E402


@pytest.fixture
def client(tmp_path, hash_index):
    root = tmp_path / "index"
    shutil.copytree(hash_index, root)
    with RAG.open(root, lock_wait=0) as rag:
        app = create_app(rag, ServiceSettings(allow_anonymous=True, warm_up=False))
        with TestClient(app, raise_server_exceptions=False) as c:
            for _ in range(200):
                if c.get("/readyz").status_code == 200:
                    break
                time.sleep(0.05)
            yield c, root


def test_another_writers_add_is_searchable_and_a_broken_one_is_stale(client):
    c, root = client
    build_index([Document(id="fresh", title="Quokka", text="quokka zyzzyva marmot")], root,
                embedder=HashEmbedder(64), progress=False)
    assert c.get("/readyz").json() == {"status": "ready"}
    r = c.post("/v1/search", json={"query": "quokka zyzzyva marmot", "store": "bm25", "k": 1})
    assert r.status_code == 200 and r.json()["hits"][0]["id"].startswith("fresh")
    (root / "manifest.json").write_text("{")
    r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["type"] == "Stale" and "manifest.json" in r.json()["error"]
    r = c.post("/v1/search", json={"query": "quokka zyzzyva marmot", "store": "bm25", "k": 1})
    assert r.status_code == 200  # the last good generation keeps answering


def test_an_add_while_another_process_writes_is_503_with_retry_after(client):
    c, root = client
    with WriteLock(root, wait=0):
        r = c.post("/v1/documents", json={"documents": [{"id": "x", "title": "t", "text": "some words"}]})
    assert r.status_code == 503 and r.json()["type"] == "IndexBusyError" and r.headers["Retry-After"] == "5"
