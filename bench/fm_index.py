"""Bench the token FM-index (kernels/fm_index.py) on the bundled Wikipedia summaries, Qwen token ids.

Same run, same tokens: build vs raw pydivsufsort SA construction (target >= 0.5x), count and locate us/pattern
vs a numpy naive scan and a Python bytes.find loop, and index bytes/token (target <= 4). Not a pytest file.
    ADARAG_CACHE_DIR=/tmp/adarag_cache python bench/fm_index.py [--patterns 300] [--sa-rate 16] [--occ-rate 256]
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexers.bundled import wiki_summaries  # noqa: E402
from indexers.ngram import NgramParams, build_ngram, encode, ngram_text, ngram_tokenizer  # noqa: E402
from kernels import fm_index as F  # noqa: E402


def naive_positions(text: np.ndarray, pat: np.ndarray) -> np.ndarray:
    """Vectorized scan: candidates where the first token matches, then filter on each further token."""
    m = len(pat)
    cand = np.flatnonzero(text[: len(text) - m + 1] == pat[0])
    for j in range(1, m):
        cand = cand[text[cand + j] == pat[j]]
    return cand


def find_positions(buf: bytes, pat: bytes) -> list[int]:
    """Python bytes.find loop over the uint32 little-endian text, keeping 4-byte aligned hits."""
    out, i = [], buf.find(pat)
    while i >= 0:
        if i % 4 == 0:
            out.append(i // 4)
        i = buf.find(pat, i + 1)
    return out


def timed(fn, reps: int = 1) -> float:
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patterns", type=int, default=300)
    ap.add_argument("--baseline-patterns", type=int, default=40)
    ap.add_argument("--sa-rate", type=int, default=16)
    ap.add_argument("--occ-rate", type=int, default=256)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    docs = list(wiki_summaries())
    params = NgramParams(sa_rate=args.sa_rate, occ_rate=args.occ_rate)
    tok = ngram_tokenizer(params)
    t0 = time.perf_counter()
    ids = encode(tok, [ngram_text(d.text, d.title) for d in docs])
    t_tok = time.perf_counter() - t0
    n_tok = sum(map(len, ids))

    t_ours = timed(lambda: build_ngram(ids, params))
    index = build_ngram(ids, params)
    text = np.concatenate([np.append(np.asarray(p, np.int64), 2**32 - 1) for p in ids]).astype(np.uint32)
    import pydivsufsort

    t_sa = timed(lambda: pydivsufsort.divsufsort(text))
    fm = index.fm
    buf = text.astype("<u4").tobytes()

    print(f"# FM-index bench: bundled Wikipedia summaries, {len(docs)} docs, {n_tok:,} Qwen tokens "
          f"({len(fm.symbols):,} distinct), tokenized in {t_tok:.1f} s")
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, {platform.system()} "
          f"{platform.release()}; python {platform.python_version()}, numpy {np.__version__}, pydivsufsort "
          f"{md.version('pydivsufsort')}, C kernel: {F.HAVE_EXTENSION}; sa_rate={args.sa_rate} "
          f"occ_rate={args.occ_rate}")
    t_kernel = timed(lambda: F.build(text, sa_rate=args.sa_rate, occ_rate=args.occ_rate))
    rows = [("build_ngram from lists (M tokens/s)", n_tok / t_ours / 1e6, n_tok / t_sa / 1e6, "pydivsufsort SA only"),
            ("kernel build from uint32 array (M tokens/s)", n_tok / t_kernel / 1e6, n_tok / t_sa / 1e6,
             "pydivsufsort SA only")]
    for m in (1, 2, 4, 8):
        starts = rng.integers(0, len(text) - m, args.patterns * 4)
        pats = [text[s:s + m] for s in starts if not np.any(text[s:s + m] == 2**32 - 1)][: args.patterns]
        pl = [p.tolist() for p in pats]
        base = pats[: args.baseline_patterns]
        t_count = timed(lambda: [F.count(fm, p) for p in pl]) / len(pl)
        t_naive = timed(lambda: [len(naive_positions(text, p)) for p in base]) / len(base)
        t_find = timed(lambda: [len(find_positions(buf, p.astype("<u4").tobytes())) for p in base]) / len(base)
        for p in base[:5]:  # same answers
            want = naive_positions(text, p)
            assert F.count(fm, p.tolist()) == len(want) == len(find_positions(buf, p.astype("<u4").tobytes()))
            assert np.array_equal(np.sort(F.locate(fm, p.tolist())), want)
        occ = sum(F.count(fm, p) for p in pl)
        t_loc = timed(lambda: [F.locate(fm, p) for p in pl]) / len(pl)
        rows.append((f"count m={m} (us/pattern)", t_count * 1e6, t_naive * 1e6, "numpy naive scan"))
        rows.append((f"count m={m} (us/pattern)", t_count * 1e6, t_find * 1e6, "bytes.find loop"))
        rows.append((f"locate m={m} (us/pattern, {occ / len(pl):.0f} occ avg)", t_loc * 1e6, t_naive * 1e6,
                     "numpy naive scan"))
        rows.append((f"locate m={m} (us/occurrence)", t_loc * 1e6 * len(pl) / max(occ, 1),
                     t_naive * 1e6 * len(pl) / max(occ, 1), "numpy naive scan"))
    pre = [text[s:s + 2].tolist() for s in rng.integers(0, len(text) - 2, args.patterns)]
    t_cont = timed(lambda: [F.continuations(fm, p, 10) for p in pre]) / len(pre)
    t_cref = timed(lambda: [np.unique(text[naive_positions(text, np.array(p, np.uint32)) + 2],
                                      return_counts=True) for p in pre[: args.baseline_patterns]]) / args.baseline_patterns
    rows.append(("continuations m=2 k=10 (us/prefix)", t_cont * 1e6, t_cref * 1e6, "numpy naive scan + unique"))
    bpt = index.bytes_per_token
    rows.append(("index bytes/token", bpt, 4.0, "target"))
    rows.append(("build s per M tokens", t_ours / n_tok * 1e6, t_sa / n_tok * 1e6, "pydivsufsort SA only"))
    print(f"| {'metric':<45} | {'ours':>10} | {'baseline':>10} | {'ratio':>8} | baseline |")
    print(f"|{'-' * 47}|{'-' * 12}|{'-' * 12}|{'-' * 10}|----------|")
    for name, ours, base, what in rows:
        print(f"| {name:<45} | {ours:>10.2f} | {base:>10.2f} | {ours / base:>8.3f} | {what} |")
    sizes = {k: v.nbytes for k, v in fm.arrays().items()}
    print("# bytes by array: " + ", ".join(f"{k}={v / n_tok:.3f}/tok" for k, v in sizes.items()) +
          f", doc_starts={index.doc_starts.nbytes / n_tok:.3f}/tok")


if __name__ == "__main__":
    main()
