"""Bench exact speculative decoding (rag/speculative.py) on grounded questions: none vs model vs copy vs copy+model.

Same run, same prompts, greedy: every source must give the plain (`none`) output token for token (asserted). Prints
per source tokens/s (end to end, and after the prefill), target forwards per token, mean accepted length,
acceptance, ratios against `none`, and peak RSS. Questions: HotpotQA dev (../shared/data/hotpotqa) with their
supporting passages, prompts by rag.prompts.grounded_messages. Not a pytest file.
    ADARAG_CACHE_DIR=/tmp/adarag_cache python bench/specdec.py [--questions 30] [--generator qwen-1.5b]
        [--draft-model qwen-0.5b] [--drafts none,model,copy,copy+model] [--max-new-tokens 48] [--threads 1]
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.generator import Generator  # noqa: E402
from rag.prompts import grounded_messages  # noqa: E402

HOTPOT = Path(os.environ.get("ADARAG_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data" / "hotpotqa"


def load_questions(n: int) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(question, supporting passages as (id, title, text)) for the first n HotpotQA questions."""
    corpus = {}
    with open(HOTPOT / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            corpus[r["_id"]] = (r["_id"], r.get("title", ""), r["text"])
    out = []
    with open(HOTPOT / "qa.jsonl", encoding="utf-8") as f:
        for line in f:
            if len(out) >= n:
                break
            r = json.loads(line)
            out.append((r["question"], [corpus[i] for i in r["supporting_ids"]]))
    return out


def _dtype(float32: bool):
    import torch

    return torch.float32 if float32 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=30)
    ap.add_argument("--generator", default="qwen-1.5b")
    ap.add_argument("--draft-model", default=None, help="default: the generator's registered draft (qwen-0.5b)")
    ap.add_argument("--drafts", default="none,model,copy,copy+model")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--copy-candidates", type=int, default=1)
    ap.add_argument("--float32", action="store_true", help="load the models in float32 (bf16 ties vanish)")
    ap.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    a = ap.parse_args()
    drafts = [d.strip() for d in a.drafts.split(",") if d.strip()]
    if drafts[0] != "none":
        drafts.insert(0, "none")
    gen = Generator.load(a.generator, threads=a.threads, device="cpu", draft_model=a.draft_model,
                         copy_candidates=a.copy_candidates, dtype=_dtype(a.float32))
    if any("model" in d for d in drafts):
        gen.draft_lm()  # load before timing
    questions = load_questions(a.questions)
    totals = {d: {"tokens": 0, "seconds": 0.0, "decode_seconds": 0.0, "forwards": 0, "decode_forwards": 0,
                  "proposed": {}, "accepted": {}} for d in drafts}
    mismatches: list[tuple[int, str, str, str]] = []
    for qi, (question, passages) in enumerate(questions):
        msgs = grounded_messages(question, passages)
        texts = [p[2] for p in passages]
        base = None
        for d in drafts:
            g = gen.generate(msgs, a.max_new_tokens, draft=d, passages=texts)
            ids = g.text
            if base is None:
                base = ids
            elif ids != base:  # bf16 logits can tie exactly; which wins then depends on the forward's shape
                mismatches.append((qi, d, ids, base))
                print(f"MISMATCH question {qi}: {d!r} gave {ids!r}, plain decoding gave {base!r}", flush=True)
            t, s = totals[d], g.stats
            t["tokens"] += s.tokens
            t["seconds"] += s.seconds
            t["decode_seconds"] += s.seconds - s.prefill_seconds
            t["forwards"] += s.target_forwards
            t["decode_forwards"] += s.target_forwards - 1
            for k, v in s.proposed.items():
                t["proposed"][k] = t["proposed"].get(k, 0) + v
            for k, v in s.accepted.items():
                t["accepted"][k] = t["accepted"].get(k, 0) + v
        print(f"[{qi + 1}/{len(questions)}] {base!r}", flush=True)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, threads={a.threads}, "
          f"torch {md.version('torch')}, transformers {md.version('transformers')}; target {a.generator}, "
          f"{len(questions)} HotpotQA questions, greedy, max_new_tokens={a.max_new_tokens}; "
          f"{'all outputs identical' if not mismatches else f'{len(mismatches)} OUTPUTS DIFFER (see MISMATCH lines)'}")
    head = (f"{'draft':<11} {'tokens':>6} {'tok/s':>7} {'ratio':>6} {'decode tok/s':>12} {'ratio':>6} "
            f"{'fwd/token':>9} {'accepted/fwd':>12}  acceptance")
    print(head)
    rows = {}
    for d in drafts:
        t = totals[d]
        # decode tokens: all but the first, which the prefill produces
        dec_tokens = t["tokens"] - len(questions)
        row = {"tokens": t["tokens"], "tokens_per_s": t["tokens"] / t["seconds"],
               "decode_tokens_per_s": dec_tokens / t["decode_seconds"] if t["decode_seconds"] else 0.0,
               "forwards_per_token": t["forwards"] / max(t["tokens"], 1),
               "accepted_per_forward": dec_tokens / max(t["decode_forwards"], 1),
               "acceptance": {k: t["accepted"].get(k, 0) / v for k, v in t["proposed"].items() if v}}
        rows[d] = row
    for d, row in rows.items():
        row["ratio"] = row["tokens_per_s"] / rows["none"]["tokens_per_s"]
        row["decode_ratio"] = (row["decode_tokens_per_s"] / rows["none"]["decode_tokens_per_s"]
                               if rows["none"]["decode_tokens_per_s"] else 0.0)
        acc = ", ".join(f"{k} {v:.2f}" for k, v in row["acceptance"].items()) or "-"
        print(f"{d:<11} {row['tokens']:>6} {row['tokens_per_s']:>7.2f} {row['ratio']:>5.2f}x "
              f"{row['decode_tokens_per_s']:>12.2f} {row['decode_ratio']:>5.2f}x {row['forwards_per_token']:>9.3f} "
              f"{row['accepted_per_forward']:>12.2f}  {acc}")
    print(f"peak RSS {rss_mb:.0f} MB")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "rows": rows,
                                     "peak_rss_mb": rss_mb,
                                     "mismatches": mismatches}, indent=1))
    if mismatches:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
