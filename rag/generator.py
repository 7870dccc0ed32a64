"""A loaded causal LM that answers chat messages: greedy by default, stops at EOS / <|im_end|>."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from indexers.errors import ConfigError
from indexers.model_cache import load_causal_lm
from indexers.models import set_threads

__all__ = ["Generation", "Generator", "Messages"]

logger = logging.getLogger(__name__)

Messages = list[dict[str, str]] | str

_STOP_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>")


@dataclass(frozen=True)
class Generation:
    """One completion: the decoded text (special tokens removed) and what it cost."""

    text: str
    n_prompt_tokens: int
    n_new_tokens: int
    seconds: float  # wall time of prefill + decoding


class Generator:
    """Holds a causal LM and its tokenizer. `model`/`tokenizer` stay public for speculative decoding and probes."""

    def __init__(
        self, model: Any, tokenizer: Any, name: str = "", threads: int | None = None
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.threads = threads
        self.stop_token_ids = _stop_ids(model, tokenizer)

    @classmethod
    def load(
        cls,
        name_or_path: str | os.PathLike[str] = "qwen-1.5b",
        threads: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        device: str | None = None,
    ) -> Generator:
        """Load a registered model ("qwen-1.5b", "qwen-0.5b", "smollm-135m") or a local path; converts once."""
        threads = set_threads(threads)
        model, tokenizer = load_causal_lm(
            name_or_path, cache=cache_dir, threads=threads, device=device
        )
        return cls(model, tokenizer, name=os.fspath(name_or_path), threads=threads)

    @property
    def device(self) -> Any:
        return self.model.device

    def encode(
        self, messages: Messages
    ) -> Any:  # [1, n_prompt] int64 tensor on the model's device
        """The prompt token ids: `messages` through the chat template, with the assistant turn opened."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        if not messages:
            raise ValueError(
                "messages is empty: pass a question string or a list of {'role', 'content'} dicts"
            )
        ids = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]
        return ids.to(self.model.device)

    def generate(
        self, messages: Messages, max_new_tokens: int = 64, temperature: float = 0.0
    ) -> Generation:
        """Complete the chat: greedy when temperature == 0, else sampling at that temperature."""
        import torch

        if max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {temperature}")
        if self.threads is not None:
            set_threads(self.threads)
        input_ids = self.encode(messages)
        n_prompt = int(input_ids.shape[1])
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
            if temperature > 0
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        started = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=max_new_tokens,
                eos_token_id=list(self.stop_token_ids),
                pad_token_id=self.stop_token_ids[0],
                **sampling,
            )
        seconds = time.perf_counter() - started
        new = out[0, n_prompt:]
        stops = set(self.stop_token_ids)
        n_new = next(
            (i + 1 for i, t in enumerate(new.tolist()) if t in stops), int(new.shape[0])
        )
        text = self.tokenizer.decode(new[:n_new], skip_special_tokens=True).strip()
        logger.debug(
            "generated %d tokens after a %d-token prompt in %.2f s",
            n_new,
            n_prompt,
            seconds,
        )
        return Generation(
            text=text, n_prompt_tokens=n_prompt, n_new_tokens=n_new, seconds=seconds
        )


def _stop_ids(model: Any, tokenizer: Any) -> tuple[int, ...]:
    """EOS ids from the generation config and tokenizer, plus the chat end-of-turn tokens the vocab has."""
    ids: list[int] = []
    configured = getattr(
        getattr(model, "generation_config", None), "eos_token_id", None
    )
    for value in (configured if isinstance(configured, list) else [configured]) + [
        tokenizer.eos_token_id
    ]:
        if value is not None and value not in ids:
            ids.append(int(value))
    vocab = tokenizer.get_vocab()
    for token in _STOP_TOKENS:
        if token in vocab and vocab[token] not in ids:
            ids.append(vocab[token])
    if not ids:
        raise ConfigError(
            "the tokenizer has no EOS token and no <|im_end|>: cannot tell where an answer ends"
        )
    return tuple(ids)
