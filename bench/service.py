"""Load bench of `adarag serve` from a second process on loopback: /v1/search and /v1/ask at 1, 4, 16 clients.

Baseline: the same searches through the SDK in-process (what HTTP, auth, validation and the gate cost).
Then past the queue bound: a burst of asks far over --max-queue must give 503s (not errors, not a crash)
with the server's RSS flat. Usage: ADARAG_CACHE_DIR=/tmp/adarag_cache python3 bench/service.py [--quick]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from eval.shared import shared_data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = "bench-key-0123456789abcdef"
HOTPOT = shared_data("hotpotqa")


def build_index(root: Path, n_docs: int) -> list[str]:
    """A demo-like index (BM25 + hash-embedder dense) over the first HotpotQA paragraphs; returns their titles."""
    from indexers.dense import DenseParams
    from indexers.embedders import HashEmbedder
    from indexers.index import BuildParams, build_index as build
    from indexers.types import Document

    docs = []
    with open(HOTPOT / "corpus.jsonl", encoding="utf-8") as f:
        for _, line in zip(range(n_docs), f):
            r = json.loads(line)
            docs.append(Document(id=r["_id"], text=r["text"], title=r["title"]))
    shutil.rmtree(root, ignore_errors=True)
    build(docs, root, BuildParams(dense=DenseParams(embedder="hash")), embedder=HashEmbedder(64), progress=False)
    return [d.title for d in docs]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def load(base: str, path: str, bodies: list[dict], clients: int) -> dict:
    """`clients` concurrent loops sending `bodies` in turn; latency of each request, status counts."""
    lat: list[float] = []
    status: dict[int, int] = {}
    todo = iter(bodies)
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": KEY}, timeout=300,
                                 limits=httpx.Limits(max_connections=clients + 4)) as c:
        async def worker():
            for body in todo:
                t = time.perf_counter()
                try:
                    r = await c.post(path, json=body)
                    code = r.status_code
                except httpx.HTTPError:
                    code = -1
                lat.append(time.perf_counter() - t)
                status[code] = status.get(code, 0) + 1
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t0
    ok = [x for x in lat]
    p = np.percentile(ok, [50, 95, 99]) * 1000 if ok else [float("nan")] * 3
    return {"path": path, "clients": clients, "n": len(lat), "rps": round(len(lat) / wall, 2),
            "p50_ms": round(p[0], 1), "p95_ms": round(p[1], 1), "p99_ms": round(p[2], 1),
            "status": {str(k): v for k, v in sorted(status.items())},
            "errors": sum(v for k, v in status.items() if k not in (200, 503))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    ap.add_argument("--generator", default="smollm-135m")
    ap.add_argument("--max-queue", type=int, default=4)
    ap.add_argument("--docs", type=int, default=2000)
    a = ap.parse_args()
    n_search = 100 if a.quick else 400
    n_ask = 4 if a.quick else 8
    root = Path("/tmp/adarag_bench_service/index")
    titles = build_index(root, a.docs)
    queries = [{"query": t, "store": "fused", "k": 10} for t in titles[:n_search]]
    asks = [{"question": f"What is {t} known for?", "store": "bm25", "k": 2, "max_new_tokens": 8}
            for t in titles[:64]]

    # baseline: the SDK in this process, same searches
    from rag.sdk import RAG

    with RAG.open(root, threads=1) as rag:
        rag.search(queries[0]["query"], store="fused")
        t = time.perf_counter()
        for q in queries:
            rag.search(q["query"], store="fused", k=10)
        sdk_rps = len(queries) / (time.perf_counter() - t)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ADARAG_API_KEYS": KEY}
    srv = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", str(root), "--port", str(port),
                            "--generator", a.generator, "--threads", "1", "--max-queue", str(a.max_queue)],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        t = time.monotonic()
        while True:
            if srv.poll() is not None:
                raise SystemExit(srv.stderr.read().decode()[-2000:])
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() - t > 300:
                raise SystemExit("server not ready after 300 s")
            time.sleep(0.2)
        rows = []
        rss0 = rss_mb(srv.pid)
        for clients in (1, 4, 16):
            rows.append(asyncio.run(load(base, "/v1/search", queries, clients)))
        for clients in (1, 4, 16):
            rows.append(asyncio.run(load(base, "/v1/ask", asks[:max(n_ask, clients)], clients)))
        rss1 = rss_mb(srv.pid)
        burst = asyncio.run(load(base, "/v1/ask", asks[:64], 64))  # 64 at once vs max_queue
        rss2 = rss_mb(srv.pid)
        alive = httpx.get(f"{base}/healthz").status_code == 200 and srv.poll() is None
    finally:
        srv.terminate()
        srv.wait(30)
    print(f"# adarag service bench  machine: {platform.machine()} {os.cpu_count()} cores  python "
          f"{platform.python_version()}  generator {a.generator}  max_queue {a.max_queue}  docs {a.docs}")
    print(f"baseline SDK search in-process: {sdk_rps:.1f} q/s (1 thread)")
    print(f"{'path':<11}{'clients':>8}{'n':>6}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
          f"{'errors':>8}  status")
    for r in rows + [burst]:
        print(f"{r['path']:<11}{r['clients']:>8}{r['n']:>6}{r['rps']:>9}{r['p50_ms']:>9}{r['p95_ms']:>9}"
              f"{r['p99_ms']:>9}{r['errors']:>8}  {r['status']}")
    search16 = rows[2]["rps"]
    print(f"HTTP search at 16 clients / SDK in-process: {search16 / sdk_rps:.2f}")
    print(f"burst of 64 asks over max_queue {a.max_queue}: {burst['status']}; server alive: {alive}; "
          f"RSS MB: ready {rss0:.0f}, after load {rss1:.0f}, after burst {rss2:.0f}")
    print(json.dumps({"sdk_search_rps": sdk_rps, "rows": rows, "burst": burst, "alive": alive,
                      "rss_mb": [rss0, rss1, rss2]}))


if __name__ == "__main__":
    main()
