"""Batch-invariant forwards: a token's logits do not depend on how many tokens share its forward.

Speculative decoding verifies k draft tokens in one target forward and keeps those whose argmax matches; it equals
plain one-token-per-forward decoding only if both compute the same logits. In bfloat16 on CPU they did not (max
|diff| 0.25, enough to flip near-ties: results/specdec/README.md), from two kernels whose numerics depend on shape:
- attention: scaled_dot_product_attention over a block of queries with a causal mask reduces over a differently
  shaped key range than one query over exactly its visible keys;
- linear layers: oneDNN's bf16 GEMM gives the same row whatever the row count for M >= 2, but M = 1 takes a GEMV path
  whose reduction order differs (measured: 913 of 3.6M outputs differ; every M from 2 to 64 is identical).
`make_batch_invariant(model)` fixes both: attention runs one query row at a time over exactly its visible keys (the
very call plain decoding makes), and a one-row linear runs as two identical rows. On this CPU a 2-row forward costs
no more than a 1-row one (results/specdec/README.md section 1), so plain decoding gets no slower. GPUs' GEMMs are
not row-invariant (split-K), so there this removes only the attention part.
Some CPUs' kernels (MKL and oneDNN on AVX-512/AMX Xeons) are row-invariant from no row count: a row's bits change
with the count up to 64 rows. There every linear call of up to ROWWISE_MAX rows runs in blocks of exactly
BLOCK_ROWS rows (the tail padded), since at a fixed row count a row's bits depend neither on its position nor on
the other rows (probed per model). A one-row bf16 forward padded to 8 rows cost 5% more there (482 vs 460 us for
896 x 4864).
"""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["ATTENTION", "BLOCK_ROWS", "ROWWISE_MAX", "block_invariant", "gemm_plan", "invariant_linear",
           "is_batch_invariant", "make_batch_invariant", "min_gemm_rows", "rowwise_attention"]

ATTENTION = "adarag_rowwise"
_registered = False


ROWWISE_MAX = 64  # forwards over more new tokens (prompt prefills, the same in every decoding mode) keep sdpa
BLOCK_ROWS = 8  # the fixed GEMM row count where no count gives row-invariant bits


def _plain_causal(mask: Any, q: int, kv: int) -> bool:
    """True when a [b, 1, q, kv] mask is exactly "row i sees the first kv - q + i + 1 keys" (no padding)."""
    import torch

    if mask is None:
        return True
    causal = torch.ones(q, kv, dtype=torch.bool, device=mask.device).tril(kv - q)
    return bool(((mask if mask.dtype == torch.bool else mask == 0) == causal).all())


def rowwise_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, *,
                      scaling: float | None = None, **kwargs: Any) -> tuple[Any, None]:
    """Causal attention one query row at a time over exactly the keys it may see: the same call for a row whether
    it is alone in its forward (plain decoding) or one of k (verification). Grouped-query heads share their key head."""
    import torch
    from torch.nn.functional import scaled_dot_product_attention as sdpa
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    b, hq, q, d = query.shape
    hk, kv = key.shape[1], key.shape[2]
    if (q > ROWWISE_MAX or kv < q or hq % hk or kwargs.get("sliding_window")
            or not _plain_causal(attention_mask, q, kv)):
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
    grouped = query.reshape(b, hk, hq // hk, q, d)  # query head j reads key head j // (hq // hk), as repeat_kv does
    rows = [sdpa(grouped[:, :, :, i], key[:, :, :kv - q + i + 1], value[:, :, :kv - q + i + 1], scale=scaling)
            for i in range(q)]  # each [b, hk, g, d]
    return torch.stack(rows, dim=1).reshape(b, q, hq, value.shape[-1]), None


def _register() -> None:
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

        AttentionInterface.register(ATTENTION, rowwise_attention)
        ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, sdpa_mask)
        _registered = True


def min_gemm_rows(linear: Any, probe_rows: int = 40) -> int | None:
    """The fewest rows from which this linear layer's kernel gives every row the same bits whatever the row count,
    measured on random inputs (oneDNN bf16: 2, MKL fp32: 4 on this CPU); None if no count up to 8 does."""
    import torch

    seeded = torch.Generator().manual_seed(0)  # a private generator: loading a model must not reseed the caller's
    x = torch.randn(probe_rows, linear.in_features, generator=seeded).to(linear.weight.dtype).to(linear.weight.device)
    with torch.inference_mode():
        ref = linear(x)
        for m in (1, 2, 3, 4, 6, 8):
            if all(torch.equal(torch.cat([linear(x[i:i + size]) for i in range(0, probe_rows - size + 1, size)]),
                               ref[: probe_rows - probe_rows % size])
                   for size in range(m, 9)) and torch.equal(linear(x[: probe_rows - 7]), ref[: probe_rows - 7]):
                return m
    return None


def block_invariant(linear: Any, rows: int = BLOCK_ROWS, trials: int = 8) -> bool:
    """Whether this linear's kernel, called on exactly `rows` rows, gives a row the same bits at any position and
    beside any other rows (measured on random inputs, with a private generator)."""
    import torch

    seeded = torch.Generator().manual_seed(1)
    w = linear.weight

    def rand() -> Any:
        return torch.randn(rows, linear.in_features, generator=seeded).to(w.dtype).to(w.device)

    with torch.inference_mode():
        x = rand()
        base = linear(x)
        for t in range(trials):
            y, pos, j = rand(), t % rows, (3 * t + 1) % rows
            y[pos] = x[j]
            if not torch.equal(linear(y)[pos], base[j]):
                return False
    return True


def gemm_plan(linears: Any) -> tuple[int, bool] | None:
    """How to make these linears' rows batch-invariant: (rows, False) pads calls of fewer rows up to `rows` (the
    GEMM is row-invariant from there), (BLOCK_ROWS, True) runs calls of up to ROWWISE_MAX rows in blocks of exactly
    BLOCK_ROWS; None when neither holds. One probe per reduction length and dtype (it decides the kernel)."""
    by_k: dict[tuple[int, Any], Any] = {}
    for m in linears:
        key = (m.in_features, m.weight.dtype)
        if key not in by_k or m.out_features < by_k[key].out_features:
            by_k[key] = m
    needed = [min_gemm_rows(m) for m in by_k.values()]
    if None not in needed:
        return max(needed, default=1), False
    if all(block_invariant(m) for m in by_k.values()):
        return BLOCK_ROWS, True
    return None


def invariant_linear(forward: Any, rows: int, blocked: bool = False) -> Any:
    """`forward` (a linear layer's) made batch-invariant by gemm_plan's (rows, blocked)."""
    import torch

    def run(x: Any) -> Any:
        n = x.numel() // x.shape[-1]
        if n == 0 or (n >= rows if not blocked else n > ROWWISE_MAX):
            return forward(x)
        flat = x.reshape(n, x.shape[-1])
        pad = rows - n if not blocked else -n % rows
        if pad:
            flat = torch.cat([flat, flat[-1:].expand(pad, -1)])  # repeat the last row up to the row count
        out = forward(flat) if not blocked else torch.cat([forward(flat[i:i + rows])
                                                           for i in range(0, len(flat), rows)])
        return out[:n].reshape(*x.shape[:-1], -1)

    run.adarag_padded = rows  # type: ignore[attr-defined]
    return run


def make_batch_invariant(model: Any) -> Any:
    """Switch a transformers causal LM to row-wise attention and make its linears batch-invariant as gemm_plan
    finds (pad short inputs, or fixed-size blocks; measured once per model), in place; returns it."""
    from torch import nn

    _register()
    model.set_attn_implementation(ATTENTION)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears or getattr(linears[0].forward, "adarag_padded", 0):
        return model
    plan = gemm_plan(linears)
    if plan is None:
        log.warning("this device's GEMM is not row-invariant: speculative decoding may differ from plain decoding "
                    "at logit near-ties")
        return model
    rows, blocked = plan
    if blocked:
        log.info("this device's GEMM is row-invariant at no row count: linear calls of up to %d rows run in blocks "
                 "of %d", ROWWISE_MAX, rows)
    if rows > 1 or blocked:
        for module in linears:
            module.forward = invariant_linear(module.forward, rows, blocked)
    return model


def is_batch_invariant(model: Any) -> bool:
    """Whether `make_batch_invariant` was applied to this model."""
    return getattr(model.config, "_attn_implementation", None) == ATTENTION
