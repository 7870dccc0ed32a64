"""The HTTP app against a real index (hash embedder) and a real tiny generator (smollm-135m, 1 thread)."""
import json
import re
import shutil
import threading
import time

import pytest

pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from rag.prompts import parse_citations  # noqa: E402
from rag.sdk import RAG  # noqa: E402
from services.app import create_app  # noqa: E402
from services.settings import ServiceSettings  # noqa: E402

KEY = "test-key-0123456789abcdef"
H = {"Authorization": f"Bearer {KEY}"}


def _wait_ready(client, seconds=120):
    t = time.monotonic()
    while time.monotonic() - t < seconds:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"not ready: {client.get('/readyz').json()}")


@pytest.fixture(scope="module")
def rag(tmp_path_factory, hash_index):
    root = tmp_path_factory.mktemp("svc") / "index"
    shutil.copytree(hash_index, root)
    with RAG.open(root, generator="smollm-135m", threads=1) as r:
        yield r


@pytest.fixture(scope="module")
def client(rag):
    app = create_app(rag, ServiceSettings(api_keys=(KEY,), max_queue=2, max_body_bytes=64_000, max_documents=8))
    with TestClient(app, raise_server_exceptions=False) as c:
        _wait_ready(c)
        yield c


def _sse(text):
    """[(event, data dict)] from an SSE body."""
    out = []
    for frame in text.strip().split("\n\n"):
        ev = re.search(r"^event: (.*)$", frame, re.M).group(1)
        out.append((ev, json.loads(re.search(r"^data: (.*)$", frame, re.M).group(1))))
    return out


def test_health_and_readiness_are_open(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key-0123456789"}, {"X-API-Key": "x"},
                                     {"Authorization": KEY}])
def test_a_missing_or_wrong_key_is_401(client, headers):
    for method, path, body in (("POST", "/v1/search", {"query": "q"}), ("GET", "/v1/documents/x", None),
                               ("GET", "/metrics", None)):
        r = client.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, path
        assert r.json()["type"] == "HTTPError" and "API key" in r.json()["error"]
        assert r.headers["www-authenticate"] == "Bearer"


def test_search_with_either_key_header(client):
    for h in (H, {"X-API-Key": KEY}):
        r = client.post("/v1/search", json={"query": "Shirley Temple", "store": "bm25", "k": 3}, headers=h)
        assert r.status_code == 200
        hits = r.json()["hits"]
        assert len(hits) == 3 and hits[0]["title"] == "Shirley Temple"


def test_search_filters_restrict_hits_and_a_bad_filter_is_422(client):
    body = {"query": "Shirley Temple film", "store": "bm25", "k": 5}
    free = client.post("/v1/search", json=body, headers=H).json()["hits"]
    f = {"field": "id", "operator": "not in", "value": [free[0]["id"]]}
    hits = client.post("/v1/search", json={**body, "filters": f}, headers=H).json()["hits"]
    assert [h["id"] for h in hits] == [h["id"] for h in free[1:]] + [hits[-1]["id"]]  # the rest move up
    r = client.post("/v1/search", json={**body, "filters": {"field": "meta.year", "operator": "~", "value": 1}},
                    headers=H)
    assert r.status_code == 422 and "operator" in r.json()["error"]


@pytest.mark.parametrize("body, status, words", [
    (b'{"query": "Shirley', 422, "malformed JSON"),
    (b'[1, 2]', 422, "invalid request"),
    (json.dumps({"query": "q", "k": "3"}).encode(), 422, "k:"),
    (json.dumps({"query": 5}).encode(), 422, "query:"),
    (json.dumps({"query": "q", "unknown": 1}).encode(), 422, "unknown:"),
    (json.dumps({"query": "   "}).encode(), 422, "empty"),
    (json.dumps({"query": "x" * 5000}).encode(), 422, "query:"),
    (json.dumps({"query": "q", "store": "nosuch"}).encode(), 422, "bm25"),
    (json.dumps({"query": "q " * 40_000}).encode(), 413, "byte limit"),
])
def test_bad_search_requests_are_rejected_cleanly(client, body, status, words):
    r = client.post("/v1/search", content=body, headers={**H, "Content-Type": "application/json"})
    assert r.status_code == status, r.text
    j = r.json()
    assert set(j) == {"error", "type"} and words in j["error"]
    assert "Traceback" not in r.text and 'File "' not in r.text


def test_an_oversized_body_without_content_length_is_413(client):
    def chunks():
        yield b'{"query": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    r = client.post("/v1/search", content=chunks(), headers={**H, "Content-Type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["error"]


def test_ask_json_and_stream_agree(client):
    q = {"question": "Shirley Temple Black was born on what date?", "store": "bm25", "k": 2, "max_new_tokens": 12}
    r = client.post("/v1/ask", json=q, headers=H)
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["mode"] == "one_shot" and a["passages"][0]["title"] == "Shirley Temple" and a["answer_id"]
    assert set(a["citations"]) <= {p["id"] for p in a["passages"]} and 0 < a["n_new_tokens"] <= 12
    assert "raw_text" not in a and a["trace"]

    r = client.post("/v1/ask", json={**q, "stream": True}, headers=H)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _sse(r.text)
    kinds = [e for e, _ in events]
    assert kinds[-1] == "answer" and set(kinds[:-1]) == {"token"} and len(kinds) >= 2
    final = events[-1][1]
    # greedy decoding: the streamed answer is the same answer, and the deltas are its text
    assert final["answer"] == a["answer"] and final["citations"] == a["citations"]
    joined = "".join(d["text"] for e, d in events if e == "token").strip()
    assert parse_citations(joined, [p["id"] for p in final["passages"]])[0] == final["answer"]

    assert client.post("/v1/feedback", json={"answer_id": final["answer_id"], "correct": True},
                       headers=H).status_code == 204
    r = client.post("/v1/feedback", json={"answer_id": "nope", "correct": True}, headers=H)
    assert r.status_code == 404 and r.json()["type"] == "NotFoundError"


def test_ask_keeps_a_budget_and_refuses_one_a_fixed_mode_cannot_fit(client):
    q = {"question": "Shirley Temple Black was born on what date?", "store": "bm25", "max_new_tokens": 8}
    r = client.post("/v1/ask", json={**q, "budget": {"retrieval_calls": 0}}, headers=H)
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["mode"] == "none" and a["retrieval_calls"] == 0 and a["controller"]["mode"] == "none"
    r = client.post("/v1/ask", json={**q, "mode": "one_shot", "budget": {"retrieval_calls": 0}}, headers=H)
    assert r.status_code == 422 and "allows 0" in r.json()["error"]
    for bad in ({"retrieval_calls": -1}, {"seconds": 0}, {"tokens": 5}):
        r = client.post("/v1/ask", json={**q, "budget": bad}, headers=H)
        assert r.status_code == 422, (bad, r.text)


def test_ask_limits(client):
    for body, words in (({"question": "x" * 3000}, "question:"), ({"question": "q", "max_new_tokens": 10_000}, "max_new_tokens"),
                        ({"question": "q", "mode": "nosuch"}, "unknown mode"), ({"question": 3}, "question:")):
        r = client.post("/v1/ask", json=body, headers=H)
        assert r.status_code == 422 and words in r.json()["error"], r.text


def test_queue_full_is_503_with_retry_after(client):
    gate = client.app.state.svc.ask_gate
    for _ in range(gate.capacity):
        gate.try_acquire()
    try:
        for stream in (False, True):
            r = client.post("/v1/ask", json={"question": "who?", "stream": stream}, headers=H)
            assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
            assert r.json()["type"] == "GateFull" and "retry" in r.json()["error"]
    finally:
        for _ in range(gate.capacity):
            gate.release()
    m = client.get("/metrics", headers=H).text
    assert 'adarag_rejected_total{reason="queue_full"} 2.0' in m


def test_timeout_is_504_and_cancels_the_generation_holding_the_slot_until_it_stops(rag):
    question = "Count from 1 to 300, separated by commas."
    full = rag.ask(question, mode="none", max_new_tokens=160)
    assert full.n_new_tokens >= 120  # long enough that a cancelled run is visibly shorter
    app = create_app(rag, ServiceSettings(api_keys=(KEY,), timeout_s=0.3, warm_up=False))
    with TestClient(app) as c:
        _wait_ready(c)
        t = time.monotonic()
        r = c.post("/v1/ask", json={"question": question, "mode": "none", "max_new_tokens": 160}, headers=H)
        assert r.status_code == 504 and r.json()["type"] == "GateTimeout"
        gate = app.state.svc.ask_gate
        while gate.active and time.monotonic() - t < 60:
            time.sleep(0.01)
        assert gate.active == 0  # the slot was held until the worker really stopped ...
        assert time.monotonic() - t < full.timings["total"] / 2  # ... which it did early: cancelled, not finished


def test_documents_lifecycle(client):
    doc = {"id": "svc-zorblax", "title": "Zorblax", "text": "Zorblax quuxification happens every Tuesday.",
           "metadata": {"src": "test"}}
    r = client.post("/v1/documents", json={"documents": [doc]}, headers=H)
    assert r.status_code == 200 and r.json()["added"] == 1, r.text
    n_docs = r.json()["n_docs"]
    assert client.get("/v1/documents/svc-zorblax", headers=H).json() == doc
    hits = client.post("/v1/search", json={"query": "zorblax quuxification", "store": "bm25"}, headers=H).json()["hits"]
    assert hits[0]["doc_id"] == "svc-zorblax"

    # a failing batch changes nothing: the good document in it is not added either
    bad = [{"id": "svc-new", "text": "fresh"}, {"id": "svc-dup", "text": "a"}, {"id": "svc-dup", "text": "b"}]
    r = client.post("/v1/documents", json={"documents": bad}, headers=H)
    assert r.status_code == 422 and "dup" in r.json()["error"], r.text
    assert client.get("/v1/documents/svc-new", headers=H).status_code == 404

    assert client.delete("/v1/documents/svc-zorblax", headers=H).json() == {"deleted": 1}
    for method in ("GET", "DELETE"):
        r = client.request(method, "/v1/documents/svc-zorblax", headers=H)
        assert r.status_code == 404 and "svc-zorblax" in r.json()["error"]
    hits = client.post("/v1/search", json={"query": "zorblax quuxification", "store": "bm25"}, headers=H).json()["hits"]
    assert all(h["doc_id"] != "svc-zorblax" for h in hits)
    r = client.post("/v1/documents", json={"documents": [{"id": "x", "text": "y"}]}, headers=H)
    assert r.json()["n_docs"] == n_docs  # zorblax deleted, x added


def test_document_request_limits(client):
    many = [{"id": f"d{i}", "text": "t"} for i in range(9)]
    r = client.post("/v1/documents", json={"documents": many}, headers=H)
    assert r.status_code == 413 and "batches" in r.json()["error"]
    for body in ({"documents": []}, {"documents": [{"id": "a"}]}, {"documents": [{"id": 1, "text": "t"}]}):
        assert client.post("/v1/documents", json=body, headers=H).status_code == 422


def test_concurrent_ingest_and_ask(client):
    results = {}

    def ask():
        results["ask"] = client.post("/v1/ask", json={"question": "Who played Corliss Archer?", "store": "bm25",
                                                      "k": 2, "max_new_tokens": 8}, headers=H)

    def ingest():
        docs = [{"id": f"conc-{i}", "text": f"Concurrent blorptastic document number {i}."} for i in range(3)]
        results["ingest"] = client.post("/v1/documents", json={"documents": docs}, headers=H)

    threads = [threading.Thread(target=ask), threading.Thread(target=ingest)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["ask"].status_code == 200, results["ask"].text
    assert results["ingest"].status_code == 200 and results["ingest"].json()["added"] == 3
    hits = client.post("/v1/search", json={"query": "blorptastic", "store": "bm25", "k": 3}, headers=H).json()["hits"]
    assert {h["doc_id"] for h in hits} == {"conc-0", "conc-1", "conc-2"}


def test_metrics_count_requests_tokens_and_retrieval(client):
    """Counters move by what this test does (whatever ran before it): a search, then an ask."""

    def value(text: str, pattern: str) -> float:
        m = re.search(pattern + r" ([0-9.e+]+)", text)
        return float(m.group(1)) if m else 0.0

    search = r'adarag_http_requests_total\{method="POST",route="/v1/search",status="200"\}'
    calls, tokens = r'adarag_retrieval_calls_total\{store="bm25"\}', r"adarag_generated_tokens_total"
    before = client.get("/metrics", headers=H).text
    client.post("/v1/search", json={"query": "Shirley Temple", "store": "bm25"}, headers=H)
    r = client.post("/v1/ask", json={"question": "Who was Shirley Temple?", "store": "bm25", "k": 1, "mode": "one_shot",
                                     "max_new_tokens": 4}, headers=H)
    assert r.status_code == 200, r.text
    m = client.get("/metrics", headers=H)
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    t = m.text
    assert value(t, search) == value(before, search) + 1
    assert value(t, calls) == value(before, calls) + 2  # the search's and the ask's retrieval
    n_new = r.json()["n_new_tokens"]
    assert n_new > 0 and value(t, tokens) == value(before, tokens) + n_new
    assert 'adarag_http_request_seconds_bucket{le="0.005",route="/v1/search"}' in t
    assert "adarag_generation_tokens_per_second_count" in t and 'adarag_gate_in_flight{gate="ask"}' in t


def test_openapi_schema_is_served_and_valid(client):
    from openapi_spec_validator import validate

    r = client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    validate(spec)
    assert {"/v1/ask", "/v1/search", "/v1/documents", "/v1/documents/{doc_id}", "/healthz", "/readyz",
            "/metrics"} <= set(spec["paths"])
    ask = spec["components"]["schemas"]["AskRequest"]
    assert ask["properties"]["question"]["maxLength"] == 2048 and ask["additionalProperties"] is False
    assert "text/event-stream" in spec["paths"]["/v1/ask"]["post"]["responses"]["200"]["content"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])


def test_cors_is_off_by_default(client, rag):
    pre = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options("/v1/search", headers=pre).headers
    app = create_app(rag, ServiceSettings(api_keys=(KEY,), cors_origins=("https://example.org",), warm_up=False))
    with TestClient(app) as c:
        assert c.options("/v1/search", headers=pre).headers["access-control-allow-origin"] == "https://example.org"


def test_not_ready_is_503(hash_index):
    def fail():
        raise FileNotFoundError("no such index")

    app = create_app(fail, ServiceSettings(allow_anonymous=True))
    with TestClient(app) as c:
        t = time.monotonic()
        while "failed" not in c.get("/readyz").text and time.monotonic() - t < 10:
            time.sleep(0.05)
        r = c.get("/readyz")
        assert r.status_code == 503 and "no such index" in r.json()["error"]
        r = c.post("/v1/search", json={"query": "q"})
        assert r.status_code == 503 and r.json()["type"] == "NotReady"
        assert c.get("/healthz").status_code == 200
