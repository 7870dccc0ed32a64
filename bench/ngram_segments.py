"""Bench SEAL n-gram search over segments with deletions against one NgramIndex built over the live rows.

Same run, same tokens: passages of 60-120 words drawn from HotpotQA sentences (as bench/scale.py), tokenized
once per sentence with the Qwen tokenizer; split into `--segments` equal segments, a random `--delete` share of
rows deleted (each segment carries an index over its deleted rows). Baseline: build_ngram over the live rows.
Prints query p50/p95 ours/base/ratio, the results' equality, build times, machine, versions. Not a pytest file.
    python bench/ngram_segments.py [--passages 1000000] [--segments 5] [--delete 0.02] [--queries 200]
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import platform
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexers.ngram import build_ngram, encode, ngram_text, ngram_tokenizer  # noqa: E402
from indexers.ngram_search import search  # noqa: E402
from indexers.ngram_segments import SegmentedNgram  # noqa: E402
from eval.shared import shared_data

HOTPOT = shared_data("hotpotqa") / "corpus.jsonl"


def corpus(n: int, tok, seed: int = 0) -> tuple[list[list[int]], list[str]]:
    """`n` passages of 60-120 words as token lists (sentences tokenized once), and the sentence pool."""
    rng = random.Random(seed)
    sents = []
    for line in HOTPOT.read_text(encoding="utf-8").splitlines():
        sents.extend(s for s in re.split(r"(?<=[.!?])\s+", json.loads(line)["text"]) if len(s.split()) >= 4)
    ids = encode(tok, [ngram_text(s) for s in sents])
    words = [len(s.split()) for s in sents]
    out = []
    for _ in range(n):
        p, w = [], 0
        target = rng.randint(60, 120)
        while w < target:
            i = rng.randrange(len(sents))
            p += ids[i]
            w += words[i]
        out.append(p)
    return out, sents


def timed(fn) -> tuple[object, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--passages", type=int, default=1_000_000)
    ap.add_argument("--segments", type=int, default=5)
    ap.add_argument("--delete", type=float, default=0.02)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    tok = ngram_tokenizer()
    (docs, sents), t_gen = timed(lambda: corpus(args.passages, tok))
    rng = random.Random(1)
    qs = []
    for _ in range(args.queries):  # HotpotQA-like keyword queries, as bench/scale.py
        w = rng.choice(sents).split()
        i = rng.randrange(max(1, len(w) - 6))
        qs.append(" ".join(w[i:i + rng.randint(3, 8)]))
    q_ids = encode(tok, [ngram_text(q) for q in qs])
    live = np.random.default_rng(2).random(len(docs)) >= args.delete
    bounds = np.linspace(0, len(docs), args.segments + 1).astype(int)
    t0 = time.perf_counter()
    segs = []
    for a, b in zip(bounds, bounds[1:]):
        lv = live[a:b]
        dead = [docs[r] for r in range(a, b) if not live[r]]
        segs.append((build_ngram(docs[a:b]), build_ngram(dead) if dead else None, None if lv.all() else lv))
    sx = SegmentedNgram(segs)
    t_ours_build = time.perf_counter() - t0
    rows_of = np.flatnonzero(live)
    del segs
    live_docs = [d for d, x in zip(docs, live) if x]
    del docs
    t0 = time.perf_counter()
    one = build_ngram(live_docs)
    t_base_build = time.perf_counter() - t0
    del live_docs
    for q in q_ids[:5]:  # warm: first touch of the arrays
        search(sx, q, 10), search(one, q, 10)
    lat = {"ours": [], "base": []}
    same = 0
    for q in q_ids:
        (r, s), t = timed(lambda: search(sx, q, 10))
        lat["ours"].append(t)
        (r1, s1), t1 = timed(lambda: search(one, q, 10))
        lat["base"].append(t1)
        same += bool(np.array_equal(r, rows_of[r1]) and s.tobytes() == s1.tobytes())
    p = {k: (np.percentile(v, 50) * 1e3, np.percentile(v, 95) * 1e3) for k, v in lat.items()}
    print(f"{args.passages} passages ({sx.n_tokens} live tokens), {args.segments} segments, "
          f"{len(rows_of)} live rows ({args.delete:.0%} deleted), {len(q_ids)} queries, k=10")
    print(f"corpus+tokenize {t_gen:.1f} s; build: segments+deleted {t_ours_build:.1f} s, one live build "
          f"{t_base_build:.1f} s")
    print(f"{'':18}{'ours':>10}{'base':>10}{'ratio':>8}")
    for i, name in enumerate(("query p50 ms", "query p95 ms")):
        print(f"{name:18}{p['ours'][i]:10.1f}{p['base'][i]:10.1f}{p['ours'][i] / p['base'][i]:8.2f}")
    print(f"identical results (rows mapped, scores bitwise): {same}/{len(q_ids)}")
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()} "
          f"numpy {np.__version__} pydivsufsort {md.version('pydivsufsort')}")


if __name__ == "__main__":
    main()
