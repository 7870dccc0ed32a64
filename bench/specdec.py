"""Bench exact speculative decoding (rag/speculative.py) on grounded questions: none vs model vs copy vs copy+model.

Same run, same prompts, greedy: every source must give the plain (`none`) output token for token (asserted). Prints
per source tokens/s (end to end, and after the prefill), target forwards per token, mean accepted length,
acceptance, where the decoding time goes (draft / verify / rollback / other), ratios against `none`, peak RSS and
the load average. The sources take turns first on each question (rotating order) so machine noise hits them alike;
each source keeps its own prefix cache, so it reuses the previous question's prompt prefix, never its own.
Workloads: `short` (HotpotQA dev questions with their supporting passages, the product's grounded prompt,
rag.prompts.grounded_messages: a few words + a citation), `long` (the same plus one supporting sentence quoted
from the passages: the regime REST / prompt lookup report on) and `rag` (Spec-Bench's RAG category: NQ and
TriviaQA questions, alternately, each with its own passage and the 3 passages of its set that BM25 ranks next,
in retrieval order, answered freely in up to 96 tokens). Not a pytest file.
    ADARAG_CACHE_DIR=/tmp/adarag_cache taskset -c 0 python bench/specdec.py [--questions 30] [--generator qwen-1.5b]
        [--draft-model qwen-0.5b] [--drafts none,model,copy,copy+model] [--workload short|long|rag]
        [--max-new-tokens 48] [--threads 1] [--dtype bfloat16|float32] [--no-prefix-cache] [--no-batch-invariant]
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import platform
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.generator import Generator  # noqa: E402
from rag.prefix_cache import PrefixCache  # noqa: E402
from rag.prompts import grounded_messages  # noqa: E402
from eval.shared import shared_data

HOTPOT = shared_data("hotpotqa")


def load_questions(n: int, offset: int = 0) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(question, supporting passages as (id, title, text)) for n HotpotQA questions after the first `offset`."""
    corpus = {}
    with open(HOTPOT / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            corpus[r["_id"]] = (r["_id"], r.get("title", ""), r["text"])
    out = []
    with open(HOTPOT / "qa.jsonl", encoding="utf-8") as f:
        for line in f:
            if len(out) >= n + offset:
                break
            r = json.loads(line)
            out.append((r["question"], [corpus[i] for i in r["supporting_ids"]]))
    return out[offset:]


def load_rag_questions(n: int, offset: int = 0, distractors: int = 3) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Spec-Bench-style RAG prompts: NQ and TriviaQA questions taken alternately, each with the passages BM25
    ranks first over its set's corpus (its own passage always among them), best first."""
    from indexers.bm25 import build_bm25
    from indexers.text import tokenize

    sets = []
    for name in ("nq", "trivia"):
        folder = shared_data(name)
        corpus = [json.loads(line) for line in open(folder / "corpus.jsonl", encoding="utf-8") if line.strip()]
        index = build_bm25([tokenize(f"{d.get('title', '')} {d['text']}") for d in corpus])
        qa = [json.loads(line) for line in open(folder / "qa.jsonl", encoding="utf-8") if line.strip()]
        sets.append((corpus, index, qa))
    out = []
    for i in range(n + offset):
        corpus, index, qa = sets[i % 2]
        r = qa[i // 2]
        rows, _ = index.search(tokenize(r["question"]), distractors + 1)
        ids = [corpus[int(j)]["_id"] for j in rows]
        gold = r["supporting_ids"][0]
        if gold not in ids:  # BM25 missed it: the question's own passage first, then the best distractors
            ids = [gold, *ids[:distractors]]
        by_id = {d["_id"]: d for d in corpus}
        out.append((r["question"], [(j, by_id[j].get("title", ""), by_id[j]["text"]) for j in ids]))
    return out[offset:]


LONG_SYSTEM = ("Answer using only the numbered passages: the answer in a few words with the passage number in "
               "brackets, then the one sentence of the passages that supports it, quoted word for word.")
LONG_EXAMPLE = 'Two [2]. "Mars has two small moons, Phobos and Deimos."'


def messages(workload: str, question: str, passages: list[tuple[str, str, str]]) -> list[dict[str, str]]:
    """The chat prompt of a workload: `short` is the product prompt; `long` asks for a quoted supporting sentence."""
    msgs = grounded_messages(question, passages)
    if workload == "long":
        msgs[0] = {"role": "system", "content": LONG_SYSTEM}
        msgs[2] = {"role": "assistant", "content": LONG_EXAMPLE}
    return msgs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=30)
    ap.add_argument("--offset", type=int, default=0, help="skip this many questions first")
    ap.add_argument("--generator", default="qwen-1.5b")
    ap.add_argument("--draft-model", default=None, help="default: the generator's registered draft (qwen-0.5b)")
    ap.add_argument("--drafts", default="none,model,copy,copy+model")
    ap.add_argument("--workload", choices=("short", "long", "rag"), default="short")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default 48 (short), 96 (long, rag)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--copy-candidates", type=int, default=1)
    ap.add_argument("--copy-lengths", default="8,32", help="copy draft length: start,max (10,10 = the old fixed cap)")
    ap.add_argument("--copy-min-match", type=int, default=1,
                    help="generated tokens that must match the evidence before a copy draft is proposed")
    ap.add_argument("--float32", action="store_true", help="same as --dtype float32")
    ap.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
    ap.add_argument("--no-prefix-cache", action="store_true", help="prefill every prompt from scratch")
    ap.add_argument("--no-batch-invariant", action="store_true",
                    help="stock attention/GEMM kernels (bf16 verification may then differ at near-ties)")
    ap.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    a = ap.parse_args()
    import torch

    dtype = torch.float32 if a.float32 or a.dtype == "float32" else torch.bfloat16
    if a.max_new_tokens is None:
        a.max_new_tokens = 96 if a.workload in ("long", "rag") else 48
    load_start = os.getloadavg()
    drafts = [d.strip() for d in a.drafts.split(",") if d.strip()]
    if drafts[0] != "none":
        drafts.insert(0, "none")
    gen = Generator.load(a.generator, threads=a.threads, device="cpu", draft_model=a.draft_model,
                         copy_candidates=a.copy_candidates, dtype=dtype,
                         batch_invariant=not a.no_batch_invariant)
    gen.copy_lengths = tuple(int(x) for x in a.copy_lengths.split(","))
    gen.copy_min_match = a.copy_min_match
    if any("model" in d for d in drafts):
        gen.draft_lm()  # load before timing
    questions = (load_rag_questions if a.workload == "rag" else load_questions)(a.questions, a.offset)
    totals = {d: {"tokens": 0, "seconds": 0.0, "decode_seconds": 0.0, "forwards": 0, "decode_forwards": 0,
                  "proposed": {}, "accepted": {}, "drafted_steps": 0, "prefix_reused": 0, "prompt_tokens": 0,
                  "phases": {}} for d in drafts}
    caches = {d: None if a.no_prefix_cache else PrefixCache() for d in drafts}
    mismatches: list[tuple[int, str, str, str]] = []
    for qi, (question, passages) in enumerate(questions):
        msgs = messages(a.workload, question, passages)
        texts = [p[2] for p in passages]
        order = drafts[qi % len(drafts):] + drafts[:qi % len(drafts)]
        gens = {}
        for d in order:
            gen.prefix_cache = caches[d]
            gens[d] = gen.generate(msgs, a.max_new_tokens, draft=d, passages=texts)
        base = gens["none"].text
        for d in drafts:
            g = gens[d]
            if g.text != base:  # bf16 logits can tie exactly; which wins then depends on the forward's shape
                mismatches.append((qi, d, g.text, base))
                print(f"MISMATCH question {qi}: {d!r} gave {g.text!r}, plain decoding gave {base!r}", flush=True)
            t, s = totals[d], g.stats
            t["drafted_steps"] += s.drafted_steps
            t["prefix_reused"] += s.prefix_reused
            t["prompt_tokens"] += g.n_prompt_tokens
            for k, v in s.phases.items():
                t["phases"][k] = t["phases"].get(k, 0.0) + v
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
    load_end = os.getloadavg()
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, threads={a.threads}, "
          f"torch {md.version('torch')}, transformers {md.version('transformers')}; target {a.generator} "
          f"{str(dtype).removeprefix('torch.')}, workload {a.workload}, prefix cache "
          f"{'off' if a.no_prefix_cache else 'on'}, {len(questions)} "
          f"{'NQ/TriviaQA' if a.workload == 'rag' else 'HotpotQA'} questions, greedy, "
          f"max_new_tokens={a.max_new_tokens}; load avg {load_start[0]:.2f} at start, {load_end[0]:.2f} at end; "
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
               "drafted_share": t["drafted_steps"] / max(t["decode_forwards"], 1),
               "accepted_per_draft": sum(t["accepted"].values()) / max(t["drafted_steps"], 1),
               "prefill_seconds": t["phases"].get("prefill", 0.0),
               "prefix_reused_share": t["prefix_reused"] / max(t["prompt_tokens"], 1),
               "decode_ms_per_token": {k: 1000 * v / max(dec_tokens, 1) for k, v in t["phases"].items()
                                       if k != "prefill"},
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
    print(f"\n{'draft':<11} {'drafted':>7} {'acc/draft':>9} {'prefill s':>9} {'reused':>6}  decode ms/token by phase")
    for d, row in rows.items():
        ph = " ".join(f"{k} {v:.1f}" for k, v in row["decode_ms_per_token"].items())
        print(f"{d:<11} {row['drafted_share']:>7.2f} {row['accepted_per_draft']:>9.2f} {row['prefill_seconds']:>9.1f} "
              f"{row['prefix_reused_share']:>6.2f}  {ph}")
    print(f"peak RSS {rss_mb:.0f} MB")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "rows": rows,
                                     "peak_rss_mb": rss_mb, "load_avg": [load_start, load_end],
                                     "mismatches": mismatches}, indent=1))
    if mismatches:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
