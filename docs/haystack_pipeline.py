"""Example: an adarag retriever, reranker and passage selector in a Haystack 3.x pipeline, saved to YAML and
reloaded.

    python docs/haystack_pipeline.py                      # tiny built-in corpus, BM25, ltr, qwen-0.5b tokenizer
    python docs/haystack_pipeline.py --index IDX --retriever fused --reranker none --query "..." --budget 300

Needs the [haystack] extra (and [generate] for the generator's tokenizer; --tokenizer none counts words).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, like bench/

from haystack import Pipeline  # noqa: E402

from indexers.index import BuildParams, build_index  # noqa: E402
from indexers.types import Document  # noqa: E402
from retrievers.components import (  # noqa: E402
    AdaragBM25Retriever,
    AdaragDenseRetriever,
    AdaragFusedRetriever,
    AdaragNgramRetriever,
    AdaragPassageSelector,
    AdaragReranker,
)

RETRIEVERS = {"bm25": AdaragBM25Retriever, "dense": AdaragDenseRetriever, "ngram": AdaragNgramRetriever,
              "fused": AdaragFusedRetriever}

TINY = [
    Document("eiffel", "The Eiffel Tower is a wrought-iron lattice tower in Paris, completed in 1889.", "Eiffel Tower"),
    Document("louvre", "The Louvre in Paris is the world's most-visited art museum.", "Louvre"),
    Document("colosseum", "The Colosseum is an ancient amphitheatre in the centre of Rome.", "Colosseum"),
    Document("tower-bridge", "Tower Bridge is a bridge over the River Thames in London, built 1886-1894.",
             "Tower Bridge"),
]


def build_pipeline(index: str, retriever: str, top_k: int, budget: int, tokenizer: str | None,
                   reranker: str = "ltr") -> Pipeline:
    """retriever -> reranker -> selector: the selector keeps a variable number of the reranked passages within
    `budget`."""
    p = Pipeline()
    p.add_component("retriever", RETRIEVERS[retriever](index=index, top_k=top_k))
    p.add_component("reranker", AdaragReranker(reranker=reranker))
    p.add_component("selector", AdaragPassageSelector(budget_tokens=budget, tokenizer=tokenizer))
    p.connect("retriever.documents", "reranker.documents")
    p.connect("reranker.documents", "selector.documents")
    return p


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", default=None, help="an adarag index (default: build a 4-document BM25 index)")
    ap.add_argument("--retriever", choices=sorted(RETRIEVERS), default="bm25")
    ap.add_argument("--query", default="When was the tower in Paris completed?")
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--reranker", default="ltr", help="reranker spec: ltr (bundled), none, llm, cross-encoder:PATH")
    ap.add_argument("--budget", type=int, default=60, help="token budget of the selected passages")
    ap.add_argument("--tokenizer", default="qwen-0.5b", help="generator whose tokenizer counts the budget, or none")
    a = ap.parse_args(argv)
    tokenizer = None if a.tokenizer.lower() == "none" else a.tokenizer
    with tempfile.TemporaryDirectory() as tmp:
        index = a.index
        if index is None:
            index = str(Path(tmp) / "index")
            build_index(TINY, index, BuildParams(stores=("bm25",)), progress=False)
        yaml = build_pipeline(index, a.retriever, a.top_k, a.budget, tokenizer, a.reranker).dumps()
        # what a YAML-configured deployment does; Haystack 3 loads only allow-listed component modules
        pipeline = Pipeline.loads(yaml, allowed_modules=["retrievers.components"])
        out = pipeline.run({"retriever": {"query": a.query}, "reranker": {"query": a.query}})["selector"]
    result = {"chosen": [[d.id, round(d.score, 4), d.content] for d in out["documents"]],
              "dropped": [[d.id, d.meta["drop_reason"]] for d in out["dropped"]],
              "tokens_used": out["tokens_used"]}
    print(yaml)
    print(json.dumps(result, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()
