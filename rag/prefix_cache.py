"""Reuse the prompt KV cache across generations: RAG prompts share their system prompt and worked example.

One entry, the last prompt's cache after its prefill. A new prompt restores a copy cropped to the longest common
prefix (at least one token is always fed again, since the prefill's last logits pick the first answer token) and
prefills only the rest. Causal attention makes the prefix's keys/values the same whatever follows, so the output is
unchanged; only the prefill's matmuls are split in two, which moves float rounding (bf16 more than fp32).
"""
from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["PrefixCache", "common_prefix"]


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two id sequences."""
    n, limit = 0, min(len(a), len(b))
    while n < limit and a[n] == b[n]:
        n += 1
    return n


class PrefixCache:
    """Holds the last prompt's token ids and a private copy of its DynamicCache; thread-safe."""

    def __init__(self, min_tokens: int = 16) -> None:
        if min_tokens < 1:
            raise ValueError(f"min_tokens must be >= 1, got {min_tokens!r}")
        self.min_tokens = min_tokens  # shorter shared prefixes are not worth a cache copy
        self._ids: list[int] = []
        self._cache: Any = None
        self._model: Any = None
        self._lock = threading.Lock()
        self.hits = 0
        self.reused_tokens = 0

    def restore(self, lm: Any, prompt: Sequence[int]) -> int:
        """Load the shared prefix of `prompt` into the empty KVModel `lm`; the number of prompt tokens it now holds."""
        if lm.ids:
            raise ValueError("restore needs an empty KVModel (its cache already holds tokens)")
        with self._lock:
            if self._cache is None or self._model is not lm.model:
                return 0
            n = min(common_prefix(self._ids, prompt), len(prompt) - 1)
            if n < self.min_tokens:
                return 0
            cache = copy.deepcopy(self._cache)
            self.hits += 1
            self.reused_tokens += n
        if n < len(self._ids):
            cache.crop(n - len(self._ids))  # a negative count drops that many tokens from the end
        lm.cache = cache
        lm.ids = [int(t) for t in prompt[:n]]
        return n

    def store(self, lm: Any) -> None:
        """Remember `lm`'s cache (call right after the prompt's prefill, before any generated token is fed)."""
        snapshot = copy.deepcopy(lm.cache)
        with self._lock:
            self._ids, self._cache, self._model = list(lm.ids), snapshot, lm.model

    def clear(self) -> None:
        """Forget the stored prefix (e.g. after the model's weights change)."""
        with self._lock:
            self._ids, self._cache, self._model = [], None, None
