"""Index scale: build, open, add, delete and query at 10k / 100k / 1M passages, ours against a baseline
checkout in the same run (issue #17's targets).

The corpus is synthetic but made of real text: sentences of the HotpotQA corpus (../shared/data) drawn with a
seeded RNG into passages of 60-120 words, written to a scratch folder (never to the repo). Every stage runs in a
fresh subprocess, so its wall time includes start-up and its peak RSS is its own. The baseline is the same stages
run on another git revision (a scratch worktree, `--baseline REF`), so both rows come from one machine state.

    python bench/scale.py --passages 100000 --stores bm25,ngram [--baseline REF] [--json results/scale/x.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from revisions import ROOT, checkouts  # bench/ is on sys.path when a script here runs
HOTPOT = ROOT.parent / "shared" / "data" / "hotpotqa" / "corpus.jsonl"

# One stage of the benchmark, run as `python -c STAGE ARGS_JSON` with the checkout under test first on sys.path.
STAGE = r'''
import json, resource, sys, time
a = json.loads(sys.argv[1])
t0 = time.perf_counter()
out = {}
if a["stage"] in ("build", "add", "delete"):
    from indexers.index import BuildParams, build_index
    from indexers.ingest import read_corpus
    docs = read_corpus([a["corpus"]]) if a["stage"] != "delete" else []
    kw = {"delete": a["delete"]} if a["stage"] == "delete" else {}
    params = None
    if a["stage"] == "build":
        from indexers.dense import DenseParams
        params = BuildParams(stores=tuple(a["stores"]), dense=DenseParams(embedder=a["embedder"], use_gpu=False))
    t = time.perf_counter()
    rep = build_index(docs, a["index"], params, progress=False, **kw)
    out["op_s"] = time.perf_counter() - t  # the write itself, without interpreter start-up and imports
    out["n_passages"] = rep.manifest.n_passages
    out["segments"] = len(getattr(rep.manifest, "segments", None) or [None])
elif a["stage"] == "optimize":
    try:
        from indexers.index import optimize
    except ImportError:  # a revision before segments: nothing to merge
        optimize = None
    if optimize is not None:
        rep = optimize(a["index"], progress=False)
        out["segments"] = len(rep.manifest.segments)
    else:
        out["skipped"] = True
elif a["stage"] == "open":
    from indexers.index import open_index
    t = time.perf_counter()
    ix = open_index(a["index"])
    out["open_s"] = time.perf_counter() - t
    ix.close()
elif a["stage"] == "query":
    from indexers.index import open_index
    from retrievers.search import Retriever
    ix = open_index(a["index"])
    r = Retriever(ix)
    for store in a["stores"]:
        r.rows_batch(a["queries"][:3], store, 10)  # warm: tokenizer / first touch of the mmaps
        lat = []
        for q in a["queries"]:
            t = time.perf_counter()
            r.rows_batch([q], store, 10)
            lat.append(time.perf_counter() - t)
        lat.sort()
        out[store] = {"p50_ms": 1000 * lat[len(lat) // 2], "p95_ms": 1000 * lat[int(len(lat) * 0.95)]}
out["wall_s"] = time.perf_counter() - t0
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(out))
'''


def synthetic_corpus(path: Path, n: int, seed: int = 0, prefix: str = "s") -> None:
    """`n` passages of 60-120 words drawn from real HotpotQA sentences, one document each, as JSONL."""
    rng = random.Random(seed)
    sentences, titles = [], []
    with open(HOTPOT, encoding="utf-8") as f:
        for _, line in zip(range(200_000), f):
            rec = json.loads(line)
            titles.append(rec["title"])
            sentences.extend(s for s in re.split(r"(?<=[.!?])\s+", rec["text"]) if len(s.split()) >= 4)
    with open(path, "w", encoding="utf-8") as g:
        for i in range(n):
            words, parts = rng.randint(60, 120), []
            while sum(len(p.split()) for p in parts) < words:
                parts.append(rng.choice(sentences))
            g.write(json.dumps({"id": f"{prefix}{i}", "title": f"{rng.choice(titles)} ({i})",
                                "text": " ".join(parts)}) + "\n")


def queries(n: int, seed: int = 1) -> list[str]:
    """HotpotQA-like keyword queries: a few words taken from random corpus sentences."""
    rng = random.Random(seed)
    with open(HOTPOT, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for _, line in zip(range(20_000), f)]
    out = []
    while len(out) < n:
        w = rng.choice(texts).split()
        if len(w) >= 8:
            i = rng.randrange(len(w) - 5)
            out.append(" ".join(w[i:i + 5]))
    return out


def run_stage(checkout: Path, **args) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    p = subprocess.run([sys.executable, "-c", STAGE, json.dumps(args)], cwd=checkout, env=env,
                       capture_output=True, text=True)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if p.returncode != 0 or line is None:
        raise SystemExit(f"stage {args['stage']} failed in {checkout} (exit {p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(line[7:])


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def measure(checkout: Path, work: Path, corpus: Path, add: Path, stores: list[str], qs: list[str],
            merge: bool = True, embedder: str = "minilm") -> dict:
    index = work / "index"
    row = {"build": run_stage(checkout, stage="build", corpus=str(corpus), index=str(index), stores=stores,
                              embedder=embedder)}
    if "dense" in stores:
        row["build"]["passages_per_s"] = row["build"]["n_passages"] / row["build"]["wall_s"]
    row["bytes_per_passage"] = du(index) / row["build"]["n_passages"]
    row["open"] = run_stage(checkout, stage="open", index=str(index))
    row["query"] = run_stage(checkout, stage="query", index=str(index), stores=stores, queries=qs)
    row["add_100"] = run_stage(checkout, stage="add", corpus=str(add), index=str(index))
    row["delete_100"] = run_stage(checkout, stage="delete", index=str(index), delete=[f"s{i}" for i in range(100)])
    time.sleep(3)  # past verify_index's racy window, as any later use of the index is
    row["reopen"] = run_stage(checkout, stage="open", index=str(index))
    row["optimize"] = run_stage(checkout, stage="optimize", index=str(index)) if merge else {"skipped": True}
    return row


def table(rows: dict[str, dict], stores: list[str]) -> str:
    names = list(rows)
    lines = ["| measure | " + " | ".join(names) + (" | ours / baseline |" if len(names) == 2 else " |"),
             "|---|" + "---|" * (len(names) + (len(names) == 2))]

    def add(label, get, better_low=True):
        vals = [get(rows[n]) for n in names]
        cells = ["n/a" if v is None else f"{v:,.2f}" if isinstance(v, float) else f"{v:,}" for v in vals]
        ratio = f" {vals[1] / vals[0]:.2f}x |" if len(vals) == 2 and vals[0] and vals[1] is not None else \
            (" |" if len(vals) == 2 else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |" + ratio)

    add("build wall s", lambda r: r["build"]["wall_s"])
    add("segments after build", lambda r: r["build"].get("segments", 1))
    add("build peak RSS MB", lambda r: r["build"]["peak_rss_mb"])
    if "dense" in stores:
        add("build passages/s (all stores)", lambda r: r["build"].get("passages_per_s"))
    add("bytes on disk / passage", lambda r: r["bytes_per_passage"])
    add("first open s (in process, hashes all)", lambda r: r["open"]["open_s"])
    add("add 100 docs s (in process)", lambda r: r["add_100"].get("op_s"))
    add("add 100 docs s (with imports)", lambda r: r["add_100"]["wall_s"])
    add("delete 100 docs s (in process)", lambda r: r["delete_100"].get("op_s"))
    add("delete 100 docs s (with imports)", lambda r: r["delete_100"]["wall_s"])
    add("reopen s (in process, stat cache warm)", lambda r: r.get("reopen", {}).get("open_s"))
    add("merge to one segment wall s", lambda r: None if r["optimize"].get("skipped") else r["optimize"]["wall_s"])
    add("merge peak RSS MB", lambda r: None if r["optimize"].get("skipped") else r["optimize"]["peak_rss_mb"])
    for s in stores:
        add(f"{s} query p50 ms", lambda r, s=s: r["query"][s]["p50_ms"])
        add(f"{s} query p95 ms", lambda r, s=s: r["query"][s]["p95_ms"])
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=10_000)
    ap.add_argument("--stores", default="bm25,ngram")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--baseline", default=None, help="git revision to measure in the same run (e.g. cd468db)")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir, removed)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--embedder", default="minilm", help="dense embedder, when --stores has dense (e.g. hash)")
    ap.add_argument("--no-merge", action="store_true",
                    help="skip the merge into one segment (it needs the memory of a one-segment build)")
    a = ap.parse_args()
    stores = [s for s in a.stores.split(",") if s]
    scratch = Path(a.work or tempfile.mkdtemp(prefix="adarag-scale-"))
    scratch.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    corpus, add = scratch / "corpus.jsonl", scratch / "add.jsonl"
    synthetic_corpus(corpus, a.passages)
    synthetic_corpus(add, 100, seed=7, prefix="new")
    qs = queries(a.queries)
    print(f"corpus: {a.passages:,} passages ({corpus.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s",
          flush=True)
    try:
        with checkouts(a.baseline, scratch) as cos:
            rows = {}
            for name, co in cos.items():
                work = scratch / re.sub(r"\W", "_", name)
                shutil.rmtree(work, ignore_errors=True)
                work.mkdir()
                print(f"measuring {name} ...", flush=True)
                rows[name] = measure(co, work, corpus, add, stores, qs, merge=not a.no_merge, embedder=a.embedder)
                shutil.rmtree(work, ignore_errors=True)
    finally:
        if a.work is None:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n{a.passages:,} passages, stores {','.join(stores)}"
          f"{f' (dense: {a.embedder})' if 'dense' in stores else ''}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores\n")
    print(table(rows, stores))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"passages": a.passages, "stores": stores, "embedder": a.embedder, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
