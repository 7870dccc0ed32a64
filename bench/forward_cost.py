"""Bench what one target forward over k new tokens costs on top of a warm KV cache (speculative verification's unit).

Speculative decoding pays only when a (k+1)-token forward costs much less than k+1 one-token forwards (memory-bound).
For each dtype: prefill a ~600-token grounded prompt once, then time forwards of k = 1, 2, 4, 8, 16 new tokens,
cropping the cache back after each, interleaving k values across repeats (median reported). Not a pytest file.
    ADARAG_CACHE_DIR=/tmp/adarag_cache taskset -c 0 python bench/forward_cost.py --model qwen-1.5b --threads 1
        [--dtypes bfloat16,float32] [--ks 1,2,4,8,16] [--repeats 5] [--context 600] [--out results/...json]
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexers.model_cache import load_causal_lm  # noqa: E402
from indexers.models import set_threads  # noqa: E402
from rag.speculative import KVModel  # noqa: E402
from eval.shared import shared_data


def _context_ids(tokenizer, n: int) -> list[int]:
    """~n token ids of real English text (HotpotQA passages when present, else a repeated sentence)."""
    hot = shared_data("hotpotqa")
    text = ""
    if (hot / "corpus.jsonl").exists():
        with open(hot / "corpus.jsonl", encoding="utf-8") as f:
            for line in f:
                text += json.loads(line)["text"] + "\n"
                if len(text) > 8 * n:
                    break
    else:
        text = "The Zorvath Bridge over the Kelmi river was completed in 1927 by Anna Brandt. " * (n // 10 + 1)
    return tokenizer(text, add_special_tokens=False)["input_ids"][:n]


def measure(model_name: str, dtype_name: str, threads: int, ks: list[int], repeats: int, context: int) -> dict:
    import torch

    set_threads(threads)
    model, tok = load_causal_lm(model_name, threads=threads, device="cpu", dtype=getattr(torch, dtype_name))
    ids = _context_ids(tok, context)
    lm = KVModel(model)
    times: dict[int, list[float]] = {k: [] for k in ks}
    with torch.inference_mode():
        t0 = time.perf_counter()
        lm.forward(ids, last_only=True)
        prefill = time.perf_counter() - t0
        lm.forward(ids[:1])  # warm-up of the one-token path
        lm.rollback(len(ids))
        for r in range(repeats):
            for k in (ks if r % 2 == 0 else ks[::-1]):
                feed = ids[100: 100 + k]
                t0 = time.perf_counter()
                logits = lm.forward(feed)
                torch.argmax(logits, dim=-1).tolist()
                times[k].append(time.perf_counter() - t0)
                lm.rollback(len(ids))
    del model, lm
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"model": model_name, "dtype": dtype_name, "threads": threads, "context": len(ids),
            "prefill_s": prefill, "forward_ms": {k: 1000 * v for k, v in med.items()},
            "ratio_to_k1": {k: v / med[ks[0]] for k, v in med.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen-1.5b")
    ap.add_argument("--dtypes", default="bfloat16,float32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ks", default="1,2,4,8,16")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--context", type=int, default=600)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    ks = [int(k) for k in a.ks.split(",")]
    load0 = os.getloadavg()
    rows = [measure(a.model, d.strip(), a.threads, ks, a.repeats, a.context) for d in a.dtypes.split(",")]
    load1 = os.getloadavg()
    print(f"{a.model}, threads={a.threads}, torch {md.version('torch')}, transformers {md.version('transformers')}; "
          f"load avg start {load0[0]:.2f} end {load1[0]:.2f}; median of {a.repeats}")
    print(f"{'dtype':<9} {'ctx':>4} {'prefill s':>9}  " + "  ".join(f"k={k:<2} ms (x)".rjust(15) for k in ks))
    for r in rows:
        cells = "  ".join(f"{r['forward_ms'][k]:8.0f} ({r['ratio_to_k1'][k]:4.2f})" for k in ks)
        print(f"{r['dtype']:<9} {r['context']:>4} {r['prefill_s']:>9.2f}  {cells}")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"load_avg": [load0, load1], "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
