"""The mixed single-/multi-hop benchmark (Adaptive-RAG's and MBA-RAG's setting): the six QA sets of
`../shared/data` asked over one collection, their six corpora indexed together.

Adaptive retrieval pays only when questions differ in how much searching they need: SQuAD, NQ and TriviaQA
questions want one retrieval or none, HotpotQA, 2WikiMultihopQA and MuSiQue several. `write_mixed` writes one
corpus (every paragraph of the six, ids already prefixed per set) and one QA file whose lines carry their set in
"dataset", so `adarag eval qa` and `adarag controller collect` run on it unchanged and break their metrics down
per set. The sample is stratified: the first `per_dataset` questions of each set in the order of a hash of their
id, interleaved set by set, so a run stopped early is still balanced. `part` keeps the train or held-out side
of eval.collect.split_of (30 % held out by crc32 of the id), the split every controller tool uses.
"""
from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from itertools import zip_longest
from pathlib import Path
from typing import Any, Literal

from eval.collect import split_of
from eval.qa_data import QAExample, load_qa
from eval.shared import shared_data
from indexers.errors import ConfigError, CorpusError, positive_int

__all__ = ["DATASETS", "HOPS", "mixed_examples", "write_mixed"]

HOPS: dict[str, Literal["single", "multi"]] = {
    "squad": "single", "nq": "single", "trivia": "single",
    "hotpotqa": "multi", "2wikimultihopqa": "multi", "musique": "multi"}
DATASETS: tuple[str, ...] = tuple(HOPS)

Part = Literal["all", "train", "heldout"]


def _folder(name: str, root: str | Path | None) -> Path:
    folder = Path(root) / name if root is not None else shared_data(name)
    if not (folder / "qa.jsonl").is_file() or not (folder / "corpus.jsonl").is_file():
        raise CorpusError(f"{folder} lacks qa.jsonl or corpus.jsonl: point --shared (or ADARAG_SHARED) at the "
                          "folder holding data/ with the six sets (see ../shared/data/README.md)")
    return folder


def _order(qid: str) -> int:
    return zlib.crc32(b"mixed:" + qid.encode("utf-8"))


def mixed_examples(root: str | Path | None = None, *, per_dataset: int | None = None, part: Part = "all",
                   datasets: tuple[str, ...] = DATASETS) -> list[QAExample]:
    """The stratified mix: up to `per_dataset` questions of each set (all when None) from `part`, each tagged
    with its set, interleaved set by set. `root` holds the set folders (default: the shared data folder)."""
    if part not in ("all", "train", "heldout"):
        raise ConfigError(f"part must be all, train or heldout, got {part!r}")
    if per_dataset is not None:
        positive_int(per_dataset, "per_dataset")
    unknown = [d for d in datasets if d not in HOPS]
    if unknown or not datasets:
        raise ConfigError(f"unknown dataset {unknown[0] if unknown else None!r}: use some of {', '.join(DATASETS)}")
    per_set = []
    for name in datasets:
        exs = [QAExample(e.id, e.question, e.answers, e.supporting_ids, e.provenance_pages, e.context_ids,
                         dataset=name) for e in load_qa(_folder(name, root) / "qa.jsonl", format="jsonl")
               if part == "all" or split_of(e.id) == part]
        exs.sort(key=lambda e: (_order(e.id), e.id))
        per_set.append(exs[:per_dataset] if per_dataset is not None else exs)
    return [e for row in zip_longest(*per_set) for e in row if e is not None]


def _corpus_lines(root: str | Path | None, datasets: tuple[str, ...]) -> Iterator[str]:
    for name in datasets:
        with open(_folder(name, root) / "corpus.jsonl", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield line if line.endswith("\n") else line + "\n"


def write_mixed(out: str | Path, root: str | Path | None = None, *, per_dataset: int | None = None,
                part: Part = "all", datasets: tuple[str, ...] = DATASETS) -> dict[str, Any]:
    """Write `out/corpus.jsonl` (the six corpora) and `out/qa.jsonl` (the stratified mix, "dataset" on every
    line); returns the counts. Outside the repository: the data stays where its licences put it."""
    exs = mixed_examples(root, per_dataset=per_dataset, part=part, datasets=datasets)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_docs = 0
    with open(out / "corpus.jsonl.tmp", "w", encoding="utf-8") as f:
        for line in _corpus_lines(root, datasets):
            f.write(line)
            n_docs += 1
    (out / "corpus.jsonl.tmp").replace(out / "corpus.jsonl")
    with open(out / "qa.jsonl.tmp", "w", encoding="utf-8") as f:
        for e in exs:
            f.write(json.dumps({"id": e.id, "dataset": e.dataset, "question": e.question, "answers": list(e.answers),
                                "supporting_ids": list(e.supporting_ids), "context_ids": list(e.context_ids)},
                               ensure_ascii=False) + "\n")
    (out / "qa.jsonl.tmp").replace(out / "qa.jsonl")
    counts: dict[str, int] = {}
    for e in exs:
        counts[e.dataset] = counts.get(e.dataset, 0) + 1
    return {"corpus": str(out / "corpus.jsonl"), "qa": str(out / "qa.jsonl"), "n_docs": n_docs,
            "n_questions": len(exs), "per_dataset": counts, "part": part}


def _hops_summary(by_dataset: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Question-weighted means of the per-set metrics over the single-hop and the multi-hop sets."""
    keys = ("em", "f1", "accuracy", "retrieval_calls_per_q", "tokens_per_q", "seconds_per_q")
    out: dict[str, dict[str, Any]] = {}
    for hops in ("single", "multi"):
        rows = [m for d, m in by_dataset.items() if HOPS.get(d) == hops and m.get("n")]
        n = sum(m["n"] for m in rows)
        if n:
            out[hops] = {k: sum((m[k] or 0.0) * m["n"] for m in rows) / n for k in keys} | {"n": n}
    return out


def run_mixed(out_dir: str | Path, *, index: str | Path | None = None, mode: str = "one_shot",
              per_dataset: int | None = 50, part: Part = "all", generator: str = "qwen-0.5b", k: int = 4,
              threads: int | None = 1, root: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """`adarag eval mixed`: write the mix into `out_dir/data`, build one index over the six corpora (at `index`,
    default `out_dir/index`, reused when it exists; bm25, dense with the fastest MiniLM here, ngram: ~3 min), answer the mix in `mode` into `out_dir/<mode>` (resumable),
    and return its metrics with "by_dataset" and "by_hops" (single- vs multi-hop sets)."""
    from eval.qa_runner import run_qa_eval
    from indexers.dense import DenseParams
    from indexers.index import BuildParams, build_index
    from indexers.index_dir import index_state
    from indexers.ingest import read_corpus

    out_dir = Path(out_dir)
    data = write_mixed(out_dir / "data", root, per_dataset=per_dataset, part=part)
    index = Path(index) if index is not None else out_dir / "index"
    if index_state(index) != "index":
        from rag.demo import DEMO_EMBEDDER  # MiniLM in bf16 where the CPU has bf16, else int8: the fastest here

        build_index(read_corpus([Path(data["corpus"])]), index, BuildParams(dense=DenseParams(embedder=DEMO_EMBEDDER)),
                    progress=progress)
    metrics = run_qa_eval(data["qa"], index, out_dir / mode, mode=mode, generator=generator, k=k, threads=threads,
                          format="jsonl", progress=progress)
    metrics["by_hops"] = _hops_summary(metrics.get("by_dataset", {}))
    (out_dir / mode / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics
