"""POST /v1/chat/completions and GET /v1/models through the official `openai` client (a client we did not write)
against a live server on loopback: JSON and streamed answers carry the same text and citations, a bad key is
an AuthenticationError, a bad request a BadRequest-family error, and a client that leaves mid-stream frees the
service for the next request."""
from __future__ import annotations

import shutil

import pytest

from tests.support.live_server import live_server

openai = pytest.importorskip("openai", reason="the openai client is a test extra: pip install 'adarag[dev]'")
pytest.importorskip("uvicorn", reason="the [serve] extra is not installed")

KEY = "openai-key-0123456789abcdef"
Q = "When did the radio program Meet Corliss Archer first air?"


@pytest.fixture(scope="module")
def base(tmp_path_factory, hash_index):
    root = tmp_path_factory.mktemp("oai") / "index"
    shutil.copytree(hash_index, root)
    with live_server(root, KEY, "--max-queue", "1") as url:
        yield url


@pytest.fixture(scope="module")
def client(base):
    return openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0, timeout=120)


def test_models_lists_the_search_modes(client):
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "adarag" and {"adarag-none", "adarag-one_shot", "adarag-iterative", "adarag-chain"} <= set(ids)


def test_json_and_stream_carry_the_same_answer_and_citations(client):
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": Q}]
    r = client.chat.completions.create(model="adarag-one_shot", messages=msgs, max_tokens=24)
    text, ext = r.choices[0].message.content, r.model_extra["adarag"]
    assert r.object == "chat.completion" and r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.completion_tokens > 0 and r.usage.prompt_tokens > 0 and ext["mode"] == "one_shot"
    assert ext["passages"] and [p["n"] for p in ext["passages"]] == list(range(1, len(ext["passages"]) + 1))
    for c in ext["citations"]:  # every citation is a numbered passage whose marker is in the text
        assert f"[{c['n']}]" in text and ext["passages"][c["n"] - 1]["id"] == c["id"] and c["doc_id"]

    chunks = list(client.chat.completions.create(model="adarag-one_shot", messages=msgs, max_tokens=24, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    sext = final.model_extra["adarag"]
    assert streamed == text and sext["citations"] == ext["citations"]
    assert [p["id"] for p in sext["passages"]] == [p["id"] for p in ext["passages"]]
    assert chunks[-1].usage.completion_tokens == r.usage.completion_tokens  # the usage chunk comes last


def test_auth_and_bad_requests_are_openai_errors(base, client):
    bad = openai.OpenAI(base_url=f"{base}/v1", api_key="wrong-key-0123456789abc", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="adarag", messages=[{"role": "user", "content": Q}])
    with pytest.raises(openai.UnprocessableEntityError, match="unknown model"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": Q}])
    with pytest.raises(openai.UnprocessableEntityError, match="no user message"):
        client.chat.completions.create(model="adarag", messages=[{"role": "system", "content": "hi"}])
    with pytest.raises(openai.UnprocessableEntityError, match="n=2"):
        client.chat.completions.create(model="adarag", messages=[{"role": "user", "content": Q}], n=2)


def test_a_client_that_leaves_mid_stream_frees_the_service(client):
    """--max-queue 1. The control: the full 512-token answer takes `full` seconds. Abandoned after its first
    chunk, the same generation must give its slot back well before that (every retry meanwhile is a 503)."""
    import time

    ask = {"model": "adarag-none", "messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
           "max_tokens": 512}
    t = time.monotonic()
    control = client.chat.completions.create(**ask)
    full = time.monotonic() - t
    assert control.choices[0].finish_reason == "length" and control.usage.completion_tokens >= 500

    stream = client.chat.completions.create(**ask, stream=True)
    next(iter(stream))
    stream.close()
    t, r = time.monotonic(), None
    while r is None and time.monotonic() - t < full / 2:
        try:
            r = client.chat.completions.create(model="adarag-none", messages=[{"role": "user", "content": "Say hi."}],
                                               max_tokens=4)
        except openai.InternalServerError as e:  # 503 while the cancelled generation is stopping
            assert e.status_code == 503
            time.sleep(0.2)
    assert r is not None and r.model_extra["adarag"]["mode"] == "none", f"slot not freed within {full / 2:.1f} s"
