"""Reuse the KV cache of a constant prompt prefix (system prompt + worked example) across generations.

The prefix is always prefilled in its own forward, then the rest of the prompt on top of it; a later prompt that
starts with the same prefix ids restores a copy of that cache instead of prefilling it again. Hit or miss, the
numbers are the same (same forwards, same shapes), so the output never depends on what was cached before, also in
bfloat16. Splitting at the prefix, rather than at the longest common prefix with the last prompt, is what keeps it so.
"""
from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["PrefixCache", "chat_prefix_len"]


def chat_prefix_len(tokenizer: Any, messages: Any, prompt: Sequence[int]) -> int:
    """Prompt tokens before the last message (the part RAG prompts share), 0 if that is not a prefix of `prompt`."""
    if isinstance(messages, str) or len(messages) < 2:
        return 0
    head = tokenizer.apply_chat_template(list(messages[:-1]), add_generation_prompt=False, tokenize=True,
                                         return_dict=True)["input_ids"]
    n = len(head)
    return n if 0 < n < len(prompt) and list(prompt[:n]) == list(head) else 0


class PrefixCache:
    """Holds the KV cache (a private copy) of the last prefix prefilled alone, keyed by its token ids; thread-safe."""

    def __init__(self, min_tokens: int = 16) -> None:
        if min_tokens < 1:
            raise ValueError(f"min_tokens must be >= 1, got {min_tokens!r}")
        self.min_tokens = min_tokens  # shorter prefixes are not worth a cache copy
        self._ids: tuple[int, ...] = ()
        self._cache: Any = None
        self._model: Any = None
        self._lock = threading.Lock()
        self.hits = 0

    def restore(self, lm: Any, prefix: Sequence[int]) -> bool:
        """Load the cached KV of exactly `prefix` into the empty KVModel `lm`; False (nothing loaded) on a miss."""
        if lm.ids:
            raise ValueError("restore needs an empty KVModel (its cache already holds tokens)")
        key = tuple(int(t) for t in prefix)
        with self._lock:
            if len(key) < self.min_tokens or self._cache is None or self._model is not lm.model or key != self._ids:
                return False
            lm.cache = copy.deepcopy(self._cache)
            self.hits += 1
        lm.ids = list(key)
        return True

    def store(self, lm: Any) -> None:
        """Remember a copy of `lm`'s cache (call right after the prefix's own forward); short prefixes are skipped."""
        if len(lm.ids) < self.min_tokens:
            return
        snapshot = copy.deepcopy(lm.cache)
        with self._lock:
            self._ids, self._cache, self._model = tuple(lm.ids), snapshot, lm.model

    def clear(self) -> None:
        """Forget the stored prefix (e.g. after the model's weights change)."""
        with self._lock:
            self._ids, self._cache, self._model = (), None, None
