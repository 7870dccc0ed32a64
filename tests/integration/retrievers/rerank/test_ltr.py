"""retrievers.rerank.ltr: each feature on hand-built hits, the loss gradient against finite differences, the fit
recovering a planted weight vector, the checksummed file (round trip, tamper, old version, overwrite), the
bundled weights moving a passage the question names up, and `train_ltr` / `adarag reranker train --kind ltr`
on real HotpotQA paragraphs."""
from __future__ import annotations

import json

import pytest

from indexers.errors import ConfigError
from indexers.index import open_index
from retrievers.rerank.ltr import (
    FEATURES,
    load_ltr,
)


# ----------------------------------------------------------------------------- training on real paragraphs


@pytest.fixture(scope="module")
def judged(hotpot_dir, hash_index):
    from eval.beir import load_beir

    data = load_beir(hotpot_dir)
    with open_index(hash_index) as ix:
        docs = {str(p) for p in ix.ids}
    qids = [q for q, rel in data.qrels.items() if set(rel) <= docs]
    assert len(qids) >= 15
    return {q: data.queries[q] for q in qids}, {q: data.qrels[q] for q in qids}


def test_train_ltr_improves_its_training_queries_and_holds_some_out(tmp_path, hash_index, judged) -> None:
    from retrievers.rerank.train.trainer import train_ltr

    queries, qrels = judged
    with open_index(hash_index) as ix:
        obj = train_ltr(ix, tmp_path / "m", queries=queries, qrels=qrels, first_stage="bm25", depth=10,
                        train_fraction=0.7)
    nd = obj["train_ndcg@10"]
    assert nd["reranked"] > nd["first_stage"]
    info = load_ltr(tmp_path / "m")["info"]
    assert info["train_queries"] == obj["train_queries"] == round(len(qrels) * 0.7)
    assert len(info["heldout_qids"]) == len(qrels) - obj["train_queries"]
    with pytest.raises(ConfigError, match="exists"), open_index(hash_index) as ix:
        train_ltr(ix, tmp_path / "m", queries=queries, qrels=qrels, first_stage="bm25")
    with pytest.raises(ConfigError, match="none of the"), open_index(hash_index) as ix:
        train_ltr(ix, tmp_path / "x", queries={"nope": "q"}, qrels=qrels, first_stage="bm25")


def test_cli_trains_and_reports(tmp_path, hash_index, hotpot_dir, capsys) -> None:
    from services.cli import main

    out = tmp_path / "cli"
    rc = main(["reranker", "train", "--kind", "ltr", "--index", str(hash_index), "--qrels",
               str(hotpot_dir / "qrels" / "test.tsv"), "--first-stage", "bm25", "--out", str(out), "--json"])
    assert rc == 0
    obj = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert obj["format"] == "adarag-ltr" and set(obj["weights"]) == set(FEATURES)
    assert load_ltr(out)["depth"] == 20
    rc = main(["reranker", "train", "--kind", "ltr", "--index", str(hash_index), "--out", str(tmp_path / "y")])
    assert rc != 0 and "--qrels" in capsys.readouterr().err
