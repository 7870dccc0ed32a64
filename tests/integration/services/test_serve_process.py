"""`adarag serve` as a real uvicorn process on a free loopback port, talked to over TCP (JSON, SSE, auth, 413)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn", reason="the [serve] extra is not installed")

KEY = "proc-key-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, hash_index):
    root = tmp_path_factory.mktemp("proc") / "index"
    shutil.copytree(hash_index, root)
    port = _free_port()
    env = {**os.environ, "ADARAG_API_KEYS": f"other-key-0123456789abc,{KEY}"}
    p = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", str(root), "--port", str(port),
                          "--generator", "smollm-135m", "--threads", "1", "--max-queue", "2", "--json"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    t = time.monotonic()
    while time.monotonic() - t < 120:
        assert p.poll() is None, p.communicate()[1][-3000:]
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    else:
        p.kill()
        raise AssertionError("service never became ready")
    yield base
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["stopped"] is True


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
