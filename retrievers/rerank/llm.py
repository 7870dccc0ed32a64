"""A causal LM as a pointwise relevance judge (spec ``llm[:MODEL]``): P(Yes) for "does the passage contain the
answer?", the instruction + question prefix run once per query and its KV cache expanded over each batch."""
from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

from indexers.errors import ConfigError, ModelError
from retrievers.rerank.base import RerankerBase, check_texts, length_batches, require_torch

__all__ = ["DEFAULT_JUDGE", "JUDGE_INSTRUCTION", "LLMJudge"]

log = logging.getLogger(__name__)

DEFAULT_JUDGE = "qwen-1.5b"
"""The judge of spec ``llm``. qwen-0.5b is no judge: on probes P(yes) 0.29 (answer) vs 0.27 / 0.29 (unrelated),
and as fused+rerank (depth 10) it cut nDCG@10 from 0.794 to 0.631 on 15 held-out HotpotQA queries; qwen-1.5b
separates the same probes 0.97 vs 0.50 / 0.50, but ranks worse than fused: on the first 10 held-out HotpotQA
queries, depth 10, nDCG@10 0.765 vs fused 0.828 (and `ltr` 0.881 at depth 10), at 0.3 passages/s on one core
(results/reranker-ltr/judge-qwen-1.5b.md).
"""

JUDGE_INSTRUCTION = "Does the passage contain the answer to the question? Answer Yes or No."
_PLACEHOLDER = "\x00PASSAGE\x00"


class LLMJudge(RerankerBase):
    """A causal LM as a pointwise relevance judge: score = P(Yes) / (P(Yes) + P(No)) for the first answer token.

    Per query the chat prefix (system, instruction, question) runs once; its KV cache is copied and expanded
    over each right-padded batch of passages, so only passage + closing tokens are computed per pair.
    Passages longer than `max_passage_tokens` are cut (the question never is).
    """

    def __init__(self, model: str = DEFAULT_JUDGE, *, threads: int | None = None, batch_size: int = 8,
                 device: str | None = None, max_passage_tokens: int = 256, cache_dir: str | None = None,
                 dtype: str | None = None) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if max_passage_tokens < 1:
            raise ConfigError(f"max_passage_tokens must be >= 1, got {max_passage_tokens}")
        self.model_name = str(model)
        self.name = f"llm:{self.model_name}"
        self.threads = threads
        self.batch_size = batch_size
        self.device = device
        self.max_passage_tokens = max_passage_tokens
        self.cache_dir = cache_dir
        self.dtype = dtype
        self.model: Any = None
        self.tokenizer: Any = None

    def warm_up(self) -> None:
        if self.model is not None:
            return
        torch = require_torch()
        from indexers.model_cache import load_causal_lm

        dtype = getattr(torch, self.dtype) if self.dtype else None
        self.model, self.tokenizer = load_causal_lm(self.model_name, self.cache_dir, threads=self.threads,
                                                    device=self.device, dtype=dtype)
        self._yes_no = [self._first_token(w) for w in ("Yes", "No")]
        if self._yes_no[0] == self._yes_no[1]:
            raise ModelError(f"{self.model_name}: 'Yes' and 'No' start with the same token; it cannot be a judge")

    def _first_token(self, word: str) -> int:
        ids = self.tokenizer.encode(word, add_special_tokens=False)
        if not ids:
            raise ModelError(f"{self.model_name}'s tokenizer maps {word!r} to no token")
        return int(ids[0])

    def prompt_parts(self, query: str) -> tuple[str, str]:
        """(prefix, suffix) of the judge prompt around the passage; the prefix holds the question."""
        content = f"Question: {query}\n\nPassage:\n{_PLACEHOLDER}\n\n{JUDGE_INSTRUCTION}"
        messages = [{"role": "user", "content": content}]
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = f"{content}\nAnswer:"
        prefix, _, suffix = text.partition(_PLACEHOLDER)
        return prefix, suffix

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        texts = check_texts(query, texts)
        if not texts:
            return []
        self.warm_up()
        torch = require_torch()
        prefix, suffix = self.prompt_parts(query)
        prefix_ids = self._encode(prefix)
        tail = self._encode(suffix)
        rows = [self._encode(t)[: self.max_passage_tokens] + tail for t in texts]
        device = self.model.device
        base = self.model.base_model  # the decoder stack: hidden states only, no [b, L, vocab] logits
        head = self.model.get_output_embeddings()
        out = [0.0] * len(texts)
        with torch.inference_mode():
            pre = base(input_ids=torch.tensor([prefix_ids], device=device), use_cache=True)
            prefix_cache = pre.past_key_values
            n_pre = len(prefix_ids)
            for idx in length_batches([len(r) for r in rows], self.batch_size):
                width = max(len(rows[i]) for i in idx)
                ids = torch.zeros((len(idx), width), dtype=torch.long, device=device)  # [b, L] right-padded
                mask = torch.zeros((len(idx), n_pre + width), dtype=torch.long, device=device)  # [b, P+L]
                mask[:, :n_pre] = 1
                for j, i in enumerate(idx):
                    ids[j, : len(rows[i])] = torch.tensor(rows[i], device=device)
                    mask[j, n_pre: n_pre + len(rows[i])] = 1
                cache = copy.deepcopy(prefix_cache)
                cache.batch_repeat_interleave(len(idx))
                hidden = base(input_ids=ids, attention_mask=mask, past_key_values=cache,
                              use_cache=True).last_hidden_state  # [b, L, H]
                last = torch.tensor([len(rows[i]) - 1 for i in idx], device=device)
                logits = head(hidden[torch.arange(len(idx), device=device), last])  # [b, V]
                pair = logits[:, self._yes_no].float().softmax(-1)[:, 0]  # [b] P(yes | yes or no)
                for j, i in enumerate(idx):
                    out[i] = float(pair[j])
        return out
