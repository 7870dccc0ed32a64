"""Sharded build and query fan-out: one index vs shards in-process vs shards on Ray, in one run (issue #18).

Build (each in a fresh subprocess): the baseline is one ordinary index (build_index); ours are 2 shards built
in-process and 2 shards built by a local Ray instance with 2 builder actors. Reported: wall, the driver's peak
RSS and, for Ray, each builder actor's peak RSS (sampled from /proc), and Ray's overhead over in-process.
Query fan-out: bm25 and bm25+ngram top-10 latency over 1, 2, 4 shards served in-process and by Ray actors,
against the one index; "added" = p50/p95 minus the one index's. Prints ours / baseline / ratio and writes JSON.

    python bench/ray_scale.py --passages 20000 --json results/ray/20k.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from scale import queries, synthetic_corpus  # bench/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
STORES = ["bm25", "ngram"]


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _workers() -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if b"ShardBuilder" in (p / "cmdline").read_bytes():
                    out.append(int(p.name))
            except OSError:
                continue
    return out


def stage_build(kind: str, corpus: str, out: str) -> dict:
    """One build in this process: kind one | local | ray."""
    import resource

    from indexers.index import BuildParams, build_index
    from indexers.ingest import read_corpus
    from indexers.shards import build_sharded, executor_for

    params = BuildParams(stores=tuple(STORES))
    peaks: dict[int, float] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for pid in _workers():
                peaks[pid] = max(peaks.get(pid, 0.0), _rss_mb(pid))
            time.sleep(0.2)

    t0 = time.perf_counter()
    if kind == "one":
        build_index(read_corpus([corpus]), out, params, progress=False)
        start = 0.0
    else:
        ex = executor_for("local" if kind == "ray" else None, workers=2)
        start = time.perf_counter() - t0  # starting Ray
        th = threading.Thread(target=sample, daemon=True)
        th.start()
        build_sharded(read_corpus([corpus]), out, 2, params, executor=ex)
        stop.set()
    return {"wall_s": time.perf_counter() - t0, "ray_start_s": start,
            "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "worker_peak_rss_mb": sorted(peaks.values())}


def _lat(fn, qs: list[str]) -> dict:
    for q in qs[:5]:
        fn(q)
    lat = []
    for q in qs:
        t = time.perf_counter()
        fn(q)
        lat.append(1000 * (time.perf_counter() - t))
    lat.sort()
    return {"p50_ms": lat[len(lat) // 2], "p95_ms": lat[int(len(lat) * 0.95)]}


def stage_query(corpus: str, work: str, n_queries: int) -> dict:
    """Latency of one index vs 1, 2, 4 shards, in-process and on Ray actors."""
    from indexers.index import BuildParams, open_index
    from indexers.ingest import read_corpus
    from indexers.shards import LocalExecutor, build_sharded, executor_for, open_sharded
    from retrievers.search import Retriever

    qs = queries(n_queries)
    ray_ex = executor_for("local")
    out: dict = {}
    with open_index(Path(work) / "one") as one:
        for store in ("bm25", "bm25+ngram"):
            out[f"one/{store}"] = _lat(lambda q: Retriever(one).rows_batch([q], store, 10), qs)
    for n in (1, 2, 4):
        d = Path(work) / f"q{n}"
        if not d.exists():
            build_sharded(read_corpus([corpus]), d, n, BuildParams(stores=tuple(STORES)), executor=LocalExecutor())
        for name, ex in (("local", LocalExecutor()), ("ray", ray_ex)):
            with open_sharded(d, executor=ex) as sh:
                for store in ("bm25", "bm25+ngram"):
                    out[f"{name}{n}/{store}"] = _lat(lambda q: Retriever(sh).rows_batch([q], store, 10), qs)
    return out


def _sub(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'bench'}"}
    r = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    if r.returncode or not lines:
        raise RuntimeError(f"stage {args} failed:\n{r.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--no-query", action="store_true",
                    help="builds only (the query stage builds 1, 2 and 4 shards again: too long at 1M)")
    ap.add_argument("--stage", choices=["build", "query"], default=None, help=argparse.SUPPRESS)
    ap.add_argument("--kind", default="one", help=argparse.SUPPRESS)
    ap.add_argument("--corpus", default="", help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.stage == "build":
        print("RESULT " + json.dumps(stage_build(a.kind, a.corpus, a.out)))
        return
    if a.stage == "query":
        print("RESULT " + json.dumps(stage_query(a.corpus, a.out, a.queries)))
        return
    work = a.work or Path(tempfile.mkdtemp(prefix="ray-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus.jsonl"
    if not corpus.exists():
        synthetic_corpus(corpus, a.passages)
    res: dict = {"passages": a.passages, "stores": STORES, "machine": platform.processor() or platform.machine(),
                 "cpus": os.cpu_count(), "python": platform.python_version(), "build": {}}
    try:
        import ray

        res["ray"] = ray.__version__
    except ImportError:
        res["ray"] = None
    for kind, out in (("one", "one"), ("local", "local2"), ("ray", "ray2")):
        res["build"][kind] = _sub("--stage", "build", "--kind", kind, "--corpus", str(corpus),
                                  "--out", str(work / out))
    res["query"] = {} if a.no_query else _sub("--stage", "query", "--corpus", str(corpus), "--out", str(work),
                                              "--queries", str(a.queries))
    b = res["build"]
    print(f"build of {a.passages:,} passages [{', '.join(STORES)}], {os.cpu_count()} cores")
    print(f"{'':28} {'ours':>9} {'baseline':>9} {'ratio':>6}")
    for kind in ("local", "ray"):
        print(f"{'2 shards ' + kind + ' vs one index':28} {b[kind]['wall_s']:9.1f} {b['one']['wall_s']:9.1f} "
              f"{b[kind]['wall_s'] / b['one']['wall_s']:6.2f}")
    print(f"{'ray vs in-process (2 shards)':28} {b['ray']['wall_s']:9.1f} {b['local']['wall_s']:9.1f} "
          f"{b['ray']['wall_s'] / b['local']['wall_s']:6.2f}  (ray start {b['ray']['ray_start_s']:.1f} s)")
    print(f"peak RSS MB: one {b['one']['driver_peak_rss_mb']:.0f}, local {b['local']['driver_peak_rss_mb']:.0f}, "
          f"ray driver {b['ray']['driver_peak_rss_mb']:.0f}, ray workers {[round(x) for x in b['ray']['worker_peak_rss_mb']]}")
    q = res["query"]
    if q:
        print("query top-10, p50 / p95 ms; added = ours - one index")
    for store in ("bm25", "bm25+ngram") if q else ():
        base = q[f"one/{store}"]
        for n in (1, 2, 4):
            for name in ("local", "ray"):
                o = q[f"{name}{n}/{store}"]
                print(f"{store:11} {name:5} {n} shards: {o['p50_ms']:7.2f} / {o['p95_ms']:7.2f} vs "
                      f"{base['p50_ms']:6.2f} / {base['p95_ms']:6.2f}  added p50 {o['p50_ms'] - base['p50_ms']:+6.2f}"
                      f"  ratio {o['p50_ms'] / base['p50_ms']:.2f}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
