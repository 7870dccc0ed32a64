"""eval.reranker_eval: its fused row is `adarag eval beir`'s per-query numbers averaged over the held-out queries,
and interpolation weight 0 reproduces the first stage."""
from __future__ import annotations

import importlib.util
import json
import shutil

import pytest

from indexers.index import open_index
from tests.prereq import require


@pytest.fixture(scope="module")
def tiny_ce(tmp_path_factory, hotpot_dir, hash_index):
    absent = [m for m in ("torch", "transformers", "sentence_transformers") if importlib.util.find_spec(m) is None]
    if absent:
        require(False, f"not installed: {', '.join(absent)}")
    from eval.beir import load_beir
    from retrievers.rerank.train.trainer import TrainParams, train_reranker

    data = load_beir(hotpot_dir)
    with open_index(hash_index) as ix:
        docs = {str(p) for p in ix.ids}
        qids = [q for q, rel in data.qrels.items() if set(rel) <= docs][:8]
        out = tmp_path_factory.mktemp("ce") / "ce"
        train_reranker(ix, out, queries={q: data.queries[q] for q in qids}, qrels={q: data.qrels[q] for q in qids},
                       params=TrainParams(epochs=1, max_length=64, max_pairs=8, first_stage="bm25", threads=1,
                                          train_fraction=0.5, tune_fraction=0.0))
    return out


def test_fused_row_matches_eval_beir_and_weight_zero_is_the_first_stage(tiny_ce, hotpot_dir, hash_index, tmp_path):
    from eval.beir import run_beir
    from eval.reranker_eval import evaluate_reranker
    from indexers.artifact import manifest_checksum

    manifest = json.loads((tiny_ce / "adarag_reranker.json").read_text())
    manifest["interpolation"] = {"weight": 0.0}  # weight 0 must give back the fused ranking
    manifest["checksum"] = manifest_checksum(manifest)  # a deliberate edit re-seals (a stray one is refused)
    patched = tmp_path / "ce0"
    shutil.copytree(tiny_ce, patched)
    (patched / "adarag_reranker.json").write_text(json.dumps(manifest))
    res = evaluate_reranker(hotpot_dir, hash_index, patched, depths=[5], judge_queries=0, progress=False)
    rows = {r["config"]: r for r in res["rows"]}
    held = manifest["heldout_qids"]
    assert res["heldout_queries"] == len(held) == 4
    run_beir(hotpot_dir, hash_index, "fused", tmp_path / "run", report=False)
    per_query = json.loads((tmp_path / "run" / "per_query.json").read_text())
    want = sum(per_query[q]["ndcg@10"] for q in held) / len(held)
    assert rows["fused"]["ndcg@10"] == pytest.approx(want, abs=1e-4)
    assert rows["fused + CE interpolated w=0.0 @5"]["ndcg@10"] == rows["fused"]["ndcg@10"]
    assert rows["fused + CE @5"]["passages_per_s"] > 0


def test_ltr_table_on_held_out_queries_with_ablation(tmp_path, hotpot_dir, hash_index):
    """The LTR table: the fused row over the model's held-out ids, the LTR row equal to reranking with the
    saved model by hand, and one refit row per feature; --all-queries scores every judged query."""
    from eval.beir import load_beir
    from eval.reranker_eval import _docs, _row, evaluate_ltr
    from retrievers.rerank.ltr import FEATURES, LTRReranker, load_ltr
    from retrievers.rerank.train.trainer import train_ltr
    from retrievers.search import Retriever

    data = load_beir(hotpot_dir)
    with open_index(hash_index) as ix:
        docs = {str(p) for p in ix.ids}
        qids = [q for q, rel in data.qrels.items() if set(rel) <= docs]
        train_ltr(ix, tmp_path / "m", queries={q: data.queries[q] for q in qids},
                  qrels={q: data.qrels[q] for q in qids}, first_stage="fused", depth=10)
        held = load_ltr(tmp_path / "m")["info"]["heldout_qids"]
        ranked = Retriever(ix).search_batch([data.queries[q] for q in held], "fused", 200)
    res = evaluate_ltr(hotpot_dir, hash_index, tmp_path / "m")
    rows = {r["config"]: r for r in res["rows"]}
    assert rows["fused"]["n_queries"] == len(held) > 0
    r = LTRReranker(tmp_path / "m")
    by_hand = _row("", data.qrels, {q: _docs(r.rerank(data.queries[q], hs, 10)) for q, hs in zip(held, ranked)},
                   None, len(held))
    assert rows["fused + LTR @10"]["ndcg@10"] == by_hand["ndcg@10"]
    assert sum(c.startswith("fused + LTR without") for c in rows) == len(FEATURES)
    every = evaluate_ltr(hotpot_dir, hash_index, tmp_path / "m", all_queries=True)
    assert every["rows"][0]["n_queries"] == len([q for q in data.qrels if q in data.queries])
    assert len(every["rows"]) == 2
