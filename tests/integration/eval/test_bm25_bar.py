"""eval/bm25_bar.py: adarag BM25 against rank-bm25 and bm25s on the same BEIR data, one run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("pytrec_eval", reason="needs adarag[eval]")
pytest.importorskip("rank_bm25", reason="needs adarag[bench]")
pytest.importorskip("bm25s", reason="needs adarag[bench]")

from eval.bm25_bar import SYSTEMS, bm25_bar


def _subset(hotpot: Path, out: Path, n_docs: int = 600) -> Path:
    """The first `n_docs` HotpotQA paragraphs and the queries all of whose relevant paragraphs are among them."""
    lines = (hotpot / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:n_docs]
    ids = {json.loads(x)["_id"] for x in lines}
    qrels = [x.split("\t") for x in (hotpot / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    by_q: dict[str, list[str]] = {}
    for q, d, _ in qrels:
        by_q.setdefault(q, []).append(d)
    keep = {q for q, ds in by_q.items() if set(ds) <= ids}
    (out / "qrels").mkdir(parents=True)
    (out / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    qs = [x for x in (hotpot / "queries.jsonl").read_text(encoding="utf-8").splitlines() if json.loads(x)["_id"] in keep]
    (out / "queries.jsonl").write_text("\n".join(qs) + "\n", encoding="utf-8")
    (out / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t1\n" for q, d, _ in qrels if q in keep), encoding="utf-8")
    return out


def test_unsplit_adarag_equals_rank_bm25_and_all_systems_run(tmp_path, hotpot_dir):
    rows = {r["system"]: r for r in bm25_bar(_subset(hotpot_dir, tmp_path / "sub"))}
    assert set(rows) == set(SYSTEMS)
    ours, ref = rows["adarag (unsplit)"], rows["rank-bm25, adarag analyzer"]
    for m in ("ndcg@10", "recall@10", "recall@100", "mrr@10", "map"):
        assert ours[m] == ref[m], m  # bitwise-equal Okapi scores rank identically
    assert ours["ndcg@10"] > rows["rank-bm25, whitespace"]["ndcg@10"]  # the analyzer matters
    assert abs(ours["ndcg@10"] - rows["bm25s (Lucene, stopwords, stemmed)"]["ndcg@10"]) < 0.03
    assert 0.5 < ours["ndcg@10"] <= 1.0


@pytest.mark.slow
def test_bm25_bar_on_the_full_hotpotqa_sample(hotpot_dir):
    rows = {r["system"]: r for r in bm25_bar(hotpot_dir)}
    assert rows["adarag (unsplit)"]["ndcg@10"] >= rows["rank-bm25, adarag analyzer"]["ndcg@10"]
    assert rows["adarag (200-word passages, MaxP)"]["ndcg@10"] >= rows["bm25s (Lucene, stopwords, stemmed)"]["ndcg@10"] - 1e-3
