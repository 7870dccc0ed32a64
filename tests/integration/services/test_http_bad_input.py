"""The HTTP layer on hostile input (issue #16): unusable ids, and bodies that FastAPI's JSON parsing rejects
(invalid UTF-8, over-long integers, deep nesting) answered 422 with the usual `{"error", "type"}` body and a
hint, never a bare 400. No model loads: warm-up is off and every request here is refused or served by BM25."""
import shutil

import pytest

pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from rag.sdk import RAG  # noqa: E402
from services.app import create_app  # noqa: E402
from services.settings import ServiceSettings  # noqa: E402

KEY = "test-key-0123456789abcdef"
H = {"Authorization": f"Bearer {KEY}"}
JSON = {**H, "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def client(tmp_path_factory, hash_index):
    root = tmp_path_factory.mktemp("svc-bad") / "index"
    shutil.copytree(hash_index, root)
    with RAG.open(root, generator="smollm-135m", threads=1, reranker="none", controller="one_shot") as r:
        app = create_app(r, ServiceSettings(api_keys=(KEY,), warm_up=False))
        with TestClient(app, raise_server_exceptions=False) as c:
            assert c.get("/readyz").status_code == 200
            yield c


def _error(r, status=422):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "type"}
    return body


@pytest.mark.parametrize("doc_id, words", [
    ("a\x00b", "control character '\\x00'"),
    ("line\nbreak", "control character '\\n'"),
    ("d#2", "reserved for passage ids"),
    ("   ", "empty"),
])
def test_unusable_ids_are_422_naming_the_field(client, doc_id, words):
    r = client.post("/v1/documents", json={"documents": [{"id": doc_id, "text": "t"}]}, headers=H)
    body = _error(r)
    assert body["type"] == "ValidationError" and "documents.0.id" in body["error"] and words in body["error"]
    assert client.get("/v1/documents/a", headers=H).status_code == 404  # nothing was added



DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("path, raw, words", [
    ("/v1/search", b'{"query": "caf\xe9 latte"}', "not valid UTF-8 (byte 0xe9 at offset 14)"),  # latin-1 bytes
    ("/v1/search", b'{"query": "x", "k": ' + b"1" * 5_000 + b"}", "more than 4,300 digits"),
    ("/v1/search", b'{"query": "x", "store": ' + DEEP.encode() + b"}", "nested too deeply"),
    ("/v1/documents", b'{"documents": [{"id": "a", "text": "t", "metadata": {"n": ' + b"9" * 5_000 + b"}}]}",
     "send it as a JSON string"),
    ("/v1/documents", b'{"documents": [{"id": "a", "text": "t", "metadata": ' + DEEP.encode() + b"}]}",
     "nested too deeply"),
    ("/v1/ask", b'{"question": "\xff\xfe"}', "not valid UTF-8"),
], ids=["utf8-search", "long-int-search", "deep-search", "long-int-metadata", "deep-metadata", "utf8-ask"])
def test_unreadable_bodies_are_422_with_a_hint(client, path, raw, words):
    """These were FastAPI's generic 400 "There was an error parsing the body"."""
    body = _error(client.post(path, content=raw, headers=JSON))
    assert body["type"] == "ValidationError" and body["error"].startswith("invalid request: ")
    assert words in body["error"], body["error"]
    assert client.get("/v1/documents/a", headers=H).status_code == 404


def test_malformed_json_keeps_its_422(client):
    body = _error(client.post("/v1/search", content=b'{"query": ', headers=JSON))
    assert "malformed JSON" in body["error"]


def test_other_http_errors_are_unchanged(client):
    r = client.post("/v1/search", json={"query": "x"}, headers={"Authorization": "Bearer wrong-key-0123456789"})
    assert _error(r, 401)["type"] == "HTTPError"
