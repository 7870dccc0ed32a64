"""The FanOutQA-leaf x Wikipedia-summaries retrieval set, written in the standard BEIR layout.

Corpus: the 10,033 bundled Wikipedia lead summaries (id = article title with spaces as underscores, as in
Wikipedia URLs: TREC run files are whitespace-separated). Queries: the 540 FanOutQA dev leaf
sub-questions whose evidence page is one of them; qrels: that page, grade 1 (one relevant document per query).
Both come from the pip data packages (see indexers.bundled), so the set is rebuilt offline, byte for byte.
Beside it, as in ../shared/data/hotpotqa, `qa.jsonl` holds the leaf questions with one string answer in the shared
QA layout ({"id", "question", "answers", "supporting_ids"}, for `adarag eval qa`), and `qa-answerable.jsonl` the
subset whose answer appears in the evidence page's lead summary (the bundled corpus has only the lead).
"""
from __future__ import annotations

import json
from pathlib import Path

from indexers.bundled import QAItem, fanoutqa_leaf_questions, wiki_summaries
from indexers.errors import CorpusError

__all__ = ["BUNDLED", "FANOUTQA_LEAF", "write_fanoutqa_leaf", "write_qa_jsonl"]

FANOUTQA_LEAF = "fanoutqa-leaf"


def _doc_id(title: str) -> str:
    return title.replace(" ", "_")


def write_fanoutqa_leaf(out_dir: str | Path, split: str = "dev") -> dict[str, int]:
    """Write corpus.jsonl, queries.jsonl, qrels/test.tsv, qa.jsonl and qa-answerable.jsonl into `out_dir`;
    returns the counts written."""
    out = Path(out_dir)
    qs = fanoutqa_leaf_questions(split, string_answers_only=False)
    ids = [q.id for q in qs]
    if len(set(ids)) != len(ids):
        raise CorpusError("FanOutQA leaf question ids repeat: the fanoutqa package is not the pinned 1.1.1")
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    n_docs = 0
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as f:
        for d in wiki_summaries():
            f.write(json.dumps({"_id": _doc_id(d.id), "title": d.title, "text": d.text}, ensure_ascii=False) + "\n")
            n_docs += 1
    with open(out / "queries.jsonl", "w", encoding="utf-8") as f:
        for q in qs:
            f.write(json.dumps({"_id": q.id, "text": q.question, "metadata": {"answers": list(q.answers)}},
                               ensure_ascii=False) + "\n")
    with open(out / "qrels" / "test.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q in qs:
            for e in q.evidence_ids:
                f.write(f"{q.id}\t{_doc_id(e)}\t1\n")
    n_qa = write_qa_jsonl(out / "qa.jsonl", fanoutqa_leaf_questions(split))
    n_answerable = write_qa_jsonl(out / "qa-answerable.jsonl", fanoutqa_leaf_questions(split, answer_in_summary=True))
    return {"n_docs": n_docs, "n_queries": len(qs), "n_qa": n_qa, "n_qa_answerable": n_answerable}


def write_qa_jsonl(path: str | Path, items: list[QAItem]) -> int:
    """QA items in the shared QA layout (one JSON object a line; evidence ids as corpus ids); returns the count."""
    with open(path, "w", encoding="utf-8") as f:
        for q in items:
            f.write(json.dumps({"id": q.id, "question": q.question, "answers": list(q.answers),
                                "supporting_ids": [_doc_id(e) for e in q.evidence_ids]}, ensure_ascii=False) + "\n")
    return len(items)


BUNDLED = {FANOUTQA_LEAF: write_fanoutqa_leaf}
"""Bundled BEIR sets by name: `adarag data NAME` and 2CR datasets with `bundled: NAME` write them."""
