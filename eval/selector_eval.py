"""Fixed top-k vs the dynamic passage selector at equal token budgets, on HotpotQA supporting paragraphs.

    python -m eval.selector_eval --index HOTPOT_INDEX [--qa ../shared/data/hotpotqa/qa.jsonl] [--store fused]

Per question the store's top `depth` passages are the candidates; budgets are counted with the generator's
tokenizer (qwen-0.5b) over the text the prompt shows (title line + body). Strategies at each budget:
`top-k prefix` takes passages in rank order until the next one would overflow (fixed top-k with k as large
as fits), `top-4` is the same capped at 4 passages (the `ask` default), `selector` is select_passages with its
defaults. Reported: supporting-paragraph recall (a supporting document counts when any of its passages is
chosen), mean passages, mean tokens used.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from indexers.ingest import doc_id_of
from retrievers.selector import Candidate, candidate_text, select_passages

__all__ = ["BUDGETS", "prefix_top_k", "compare"]

BUDGETS = (300, 600, 1200)


def prefix_top_k(cands: Sequence[Candidate], budget: int, count: Callable[[str], int], k: int | None = None
                 ) -> list[Candidate]:
    """Fixed top-k at a budget: rank order, stop at the first passage that would overflow (or after k)."""
    out, used = [], 0
    for c in cands[:k]:
        n = count(candidate_text(c))
        if used + n > budget:
            break
        out.append(c)
        used += n
    return out


def compare(index_dir: str | Path, qa_path: str | Path, store: str = "fused", depth: int = 20,
            budgets: Sequence[int] = BUDGETS, tokenizer: str = "qwen-0.5b", limit: int | None = None,
            threads: int | None = 1, rerank: str | None = None, ids: Sequence[str] | None = None) -> list[dict]:
    """Rows of (budget, strategy, support recall, mean passages, mean tokens) over the questions of `qa_path`
    (only those whose id is in `ids`, when given); `rerank` re-scores the candidates first (a reranker spec)."""
    from indexers.index import open_index
    from indexers.ngram import NgramParams, ngram_tokenizer
    from retrievers.search import Retriever

    tok = ngram_tokenizer(NgramParams(tokenizer=tokenizer))
    cache: dict[str, int] = {}

    def count(text: str) -> int:
        if text not in cache:
            cache[text] = len(tok(text, add_special_tokens=False)["input_ids"])
        return cache[text]

    qa = [json.loads(line) for line in Path(qa_path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if ids is not None:
        keep = set(ids)
        qa = [q for q in qa if q["id"] in keep]
    qa = qa[:limit]
    with open_index(index_dir) as ix:
        hits = Retriever(ix, threads=threads).search_batch([q["question"] for q in qa], store, depth)
    if rerank:
        from retrievers.rerank import load_reranker

        reranker = load_reranker(rerank, threads=threads)
        hits = [reranker.rerank(q["question"], hs, depth) for q, hs in zip(qa, hits)]
    strategies: dict[str, Callable] = {
        "top-k prefix": lambda c, b: prefix_top_k(c, b, count),
        "top-4": lambda c, b: prefix_top_k(c, b, count, 4),
        "selector": lambda c, b: select_passages(c, b, count).chosen,
    }
    rows = []
    for b in budgets:
        for name, fn in strategies.items():
            rec = n_used = toks = 0.0
            for q, hs in zip(qa, hits):
                cands = [Candidate(h.id, h.text, h.title, max(h.score, 0.0)) for h in hs]
                chosen = fn(cands, b)
                docs = {doc_id_of(c.id) for c in chosen}
                gold = set(q["supporting_ids"])
                rec += len(gold & docs) / len(gold)
                n_used += len(chosen)
                toks += sum(count(candidate_text(c)) for c in chosen)
            n = len(qa)
            rows.append({"budget": b, "strategy": name, "support_recall": round(rec / n, 4),
                         "passages": round(n_used / n, 2), "tokens": round(toks / n, 1), "n": n})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", required=True, type=Path)
    ap.add_argument("--qa", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/hotpotqa/qa.jsonl")
    ap.add_argument("--store", default="fused")
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--rerank", default=None, metavar="SPEC", help="rerank the candidates first (e.g. ltr)")
    ap.add_argument("--heldout-of", type=Path, default=None, metavar="LTR_DIR",
                    help="only the questions this `adarag reranker train --kind ltr` model held out")
    a = ap.parse_args()
    ids = None
    if a.heldout_of is not None:
        from retrievers.rerank.ltr import load_ltr

        ids = load_ltr(a.heldout_of)["info"]["heldout_qids"]
    rows = compare(a.index, a.qa, a.store, a.depth, limit=a.limit, rerank=a.rerank, ids=ids)
    print(f"{a.store} top-{a.depth} candidates{' reranked by ' + a.rerank if a.rerank else ''}, "
          f"{rows[0]['n']} questions, qwen-0.5b tokens")
    print("| budget | strategy | support recall | passages | tokens |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['budget']} | {r['strategy']} | {r['support_recall']:.4f} | {r['passages']} | {r['tokens']} |")


if __name__ == "__main__":
    main()
