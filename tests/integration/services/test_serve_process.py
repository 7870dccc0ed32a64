"""`adarag serve` as a real uvicorn process on a free loopback port, talked to over TCP (JSON, SSE, auth, 413)."""
import json
import os
import shutil
import time

import pytest

from tests.support.live_server import live_server

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn", reason="the [serve] extra is not installed")

KEY = "proc-key-0123456789abcdef"


@pytest.fixture(scope="module")
def server(tmp_path_factory, hash_index):
    root = tmp_path_factory.mktemp("proc") / "index"
    shutil.copytree(hash_index, root)
    with live_server(root, f"other-key-0123456789abc,{KEY}", "--max-queue", "2") as base:
        yield base


def test_curl_like_ask_and_stream(server):
    h = {"Authorization": f"Bearer {KEY}"}
    q = {"question": "When did the radio program Meet Corliss Archer first air?", "store": "bm25", "k": 2,
         "max_new_tokens": 10}
    r = httpx.post(f"{server}/v1/ask", json=q, headers=h, timeout=120)
    assert r.status_code == 200, r.text
    ans = r.json()
    assert ans["passages"][0]["title"].startswith("Meet Corliss Archer") and ans["n_new_tokens"] >= 1
    events, t_first = [], None
    t0 = time.monotonic()
    with httpx.stream("POST", f"{server}/v1/ask", json={**q, "stream": True}, headers=h, timeout=120) as s:
        assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
        ev = None
        for line in s.iter_lines():
            if line.startswith("event: "):
                ev = line[7:]
            elif line.startswith("data: "):
                events.append((ev, json.loads(line[6:])))
                t_first = t_first or time.monotonic() - t0
    assert [e for e, _ in events][-1] == "answer" and events[0][0] == "token"
    assert events[-1][1]["answer"] == ans["answer"]


def test_rejections_over_tcp(server):
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    r = httpx.post(f"{server}/v1/search", json={"query": "q"})
    assert r.status_code == 401
    r = httpx.post(f"{server}/v1/search", content=b"{" + b" " * (2 << 20) + b"}",
                   headers={"X-API-Key": KEY, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["type"] == "PayloadTooLarge"
    r = httpx.post(f"{server}/v1/search", content=b"{oops", headers={"X-API-Key": KEY,
                                                                      "Content-Type": "application/json"})
    assert r.status_code == 422 and "malformed JSON" in r.json()["error"]
    assert "server" not in r.headers


def test_serve_refuses_no_keys_and_open_binds(tmp_path, hash_index):
    from services.cli import main

    env = os.environ.pop("ADARAG_API_KEYS", None)
    try:
        assert main(["serve", str(hash_index), "--json"]) == 2
        assert main(["serve", str(hash_index), "--no-auth", "--host", "0.0.0.0", "--json"]) == 2
    finally:
        if env is not None:
            os.environ["ADARAG_API_KEYS"] = env
