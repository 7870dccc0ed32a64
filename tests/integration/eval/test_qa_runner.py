"""The QA runner: resumable predictions, config checks, metrics, with a stub answerer and (slow) the real SDK."""
from __future__ import annotations


import pytest

from eval.qa_runner import read_predictions, run_qa_eval


@pytest.mark.slow
def test_real_sdk_on_a_tiny_hotpot_index(tmp_path, hotpot_dir):
    """qwen-0.5b answers 3 HotpotQA questions over their own 30 paragraphs (BM25 store)."""
    from eval.qa_data import load_qa, write_context_corpus
    from indexers.dense import DenseParams
    from indexers.embedders import HashEmbedder
    from indexers.index import BuildParams, build_index
    from indexers.ingest import read_corpus

    exs = load_qa(hotpot_dir / "qa.jsonl", limit=3)
    wanted = {i for ex in exs for i in ex.context_ids}
    corpus = {d.id: d for d in read_corpus(hotpot_dir / "corpus.jsonl") if d.id in wanted}
    assert write_context_corpus(exs, tmp_path / "corpus.jsonl", corpus) == 30
    build_index(read_corpus(tmp_path / "corpus.jsonl"), tmp_path / "idx",
                BuildParams(dense=DenseParams(embedder="hash")), embedder=HashEmbedder(64), progress=False)
    m = run_qa_eval(hotpot_dir / "qa.jsonl", tmp_path / "idx", tmp_path / "run", limit=3, k=4, store="bm25",
                    generator="qwen-0.5b", threads=1, progress=False)
    recs = read_predictions(tmp_path / "run" / "predictions.jsonl")
    assert m["n"] == 3 and len(recs) == 3
    assert all(r["n_new_tokens"] > 0 and len(r["passages"]) == 4 for r in recs)
    # BM25 over each question's own paragraphs finds most supporting ones; a broken retriever would not.
    assert m["support_recall@k"] >= 0.5
    assert m["f1"] > 0                     # the real model's answers share tokens with the gold ones
    assert (tmp_path / "run" / "report.html").exists()
