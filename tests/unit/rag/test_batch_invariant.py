"""Batch-invariant forwards: row-wise attention against a float64 reference, padded linears against unpadded rows,
and on a real model the bitwise equality that exact speculative decoding rests on."""
from __future__ import annotations


import pytest


from rag.batch_invariant import (
    BLOCK_ROWS,
    invariant_linear,
    gemm_plan,
    min_gemm_rows,
    rowwise_attention,
)

torch = pytest.importorskip("torch")


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


def test_probing_the_gemm_leaves_the_callers_random_state_alone() -> None:
    lin = torch.nn.Linear(64, 32)
    torch.manual_seed(7)
    want = torch.rand(3)
    torch.manual_seed(7)
    min_gemm_rows(lin)
    assert torch.equal(torch.rand(3), want)
