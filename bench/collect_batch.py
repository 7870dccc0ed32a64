"""Bench batched collect: the `none` and `one_shot` arms answered one question at a time (rag.modes.run_mode,
the generator's speculative greedy decode) vs decoded together (run_mode_batch -> Generator.generate_batch), same
run, same questions, same loaded model. Prints q/s per arm, the speed-up, and how many predictions agree (bf16 may
flip a logit near-tie under padding). Not a pytest file.
    python bench/collect_batch.py --index /tmp/e_hotpot_index [--n 16] [--batch 8] [--generator qwen-0.5b]
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.qa_data import load_qa  # noqa: E402
from eval.qa_metrics import exact_match  # noqa: E402
from rag.modes import BATCHED_MODES, ModeContext, run_mode, run_mode_batch  # noqa: E402
from rag.sdk import RAG  # noqa: E402
from eval.shared import shared_data


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(shared_data("hotpotqa") / "qa.jsonl"))
    ap.add_argument("--index", required=True)
    ap.add_argument("--generator", default="qwen-0.5b")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    qa = load_qa(a.data, limit=a.n)
    qs = [ex.question for ex in qa]
    rows = []
    with RAG.open(a.index, generator=a.generator, threads=a.threads) as rag:
        ctx = ModeContext.from_rag(rag, k=4, max_steps=3, step_tokens=24, answer_tokens=32, batch_size=a.batch)
        run_mode_batch("none", qs[:2], ctx)  # warm-up: first forwards allocate
        for mode in BATCHED_MODES:
            t = time.perf_counter()
            single = [run_mode(mode, q, ctx) for q in qs]
            t_single = time.perf_counter() - t
            t = time.perf_counter()
            batched = run_mode_batch(mode, qs, ctx)
            t_batch = time.perf_counter() - t
            rows.append({"arm": mode, "n": len(qs), "batch": a.batch,
                         "q_per_s_single": len(qs) / t_single, "q_per_s_batched": len(qs) / t_batch,
                         "speedup": t_single / t_batch,
                         "same_prediction": sum(s.answer == b.answer for s, b in zip(single, batched)),
                         "em_single": sum(exact_match(s.answer, ex.answers) for s, ex in zip(single, qa)),
                         "em_batched": sum(exact_match(b.answer, ex.answers) for b, ex in zip(batched, qa)),
                         "differs": [[s.answer, b.answer] for s, b in zip(single, batched) if s.answer != b.answer]})
    machine = {"python": platform.python_version(), "torch": md.version("torch"),
               "transformers": md.version("transformers"), "cpus": os.cpu_count(),
               "load": os.getloadavg(), "generator": a.generator, "threads": a.threads}
    for r in rows:
        print(f"{r['arm']:9s} n={r['n']} single {r['q_per_s_single']:.3f} q/s  batched(b={r['batch']}) "
              f"{r['q_per_s_batched']:.3f} q/s  x{r['speedup']:.2f}  same {r['same_prediction']}/{r['n']}  "
              f"EM {r['em_single']} vs {r['em_batched']}")
    print(json.dumps({"rows": rows, "machine": machine}))


if __name__ == "__main__":
    main()
