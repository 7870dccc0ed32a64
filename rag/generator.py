"""A loaded causal LM that answers chat messages: greedy by default, stops at EOS / <|im_end|>."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from indexers.errors import ConfigError, positive_int
from indexers.model_cache import load_causal_lm
from indexers.models import set_threads
from rag.batch_invariant import make_batch_invariant
from rag.prefix_cache import PrefixCache, chat_prefix_len
from rag.speculative import DRAFTS, DecodeStats, decode, make_drafts

__all__ = ["DEFAULT_DRAFT", "DRAFTS", "DecodeStats", "Generation", "Generator", "Messages", "TokenStream"]

logger = logging.getLogger(__name__)

Messages = list[dict[str, str]] | str

_STOP_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>")
DEFAULT_DRAFT = "copy"  # the fastest exact source measured by bench/specdec.py (copy drafts cost microseconds)
# Draft LMs sharing the target's tokenizer (ASSETS.md: identical 151,936-entry vocab).
_DRAFT_MODELS = {"qwen-1.5b": "qwen-0.5b"}


@dataclass(frozen=True)
class Generation:
    """One completion: the decoded text (special tokens removed) and what it cost."""

    text: str
    n_prompt_tokens: int
    n_new_tokens: int
    seconds: float  # wall time of prefill + decoding
    stats: DecodeStats = field(default_factory=DecodeStats)


class Generator:
    """Holds a causal LM and its tokenizer. `model`/`tokenizer` stay public for speculative decoding and probes."""

    def __init__(
        self, model: Any, tokenizer: Any, name: str = "", threads: int | None = None, *,
        draft_model: str | None = None, draft_lm: Any = None, cache_dir: str | os.PathLike[str] | None = None,
        copy_candidates: int = 1, dtype: Any = None, prefix_cache: bool = True,
        copy_lengths: tuple[int, int] = (8, 32), batch_invariant: bool = True,
    ) -> None:
        if batch_invariant:  # a token's logits must not depend on how many tokens share its forward (exact drafts)
            make_batch_invariant(model)
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.threads = threads
        if threads is not None:  # torch's thread count is per process: set once here, not on every call
            set_threads(threads)
        self.stop_token_ids = _stop_ids(model, tokenizer)
        self.draft_model_name = draft_model if draft_model is not None else _DRAFT_MODELS.get(name)
        self._draft_model = draft_lm
        self._cache_dir = cache_dir
        self.copy_candidates = copy_candidates
        self.copy_lengths = copy_lengths  # copy draft length: starts at [0], doubles while accepted whole, up to [1]
        self.copy_min_match = 1  # generated tokens that must match the evidence before a copy draft is proposed
        self._dtype = dtype
        self.prefix_cache = PrefixCache() if prefix_cache else None  # the constant prompt head's KV, reused

    @classmethod
    def load(
        cls,
        name_or_path: str | os.PathLike[str] = "qwen-1.5b",
        threads: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        device: str | None = None,
        *,
        draft_model: str | None = None,
        copy_candidates: int = 1,
        dtype: Any = None,
        prefix_cache: bool = True,
        batch_invariant: bool = True,
    ) -> Generator:
        """Load a registered model ("qwen-1.5b", "qwen-0.5b", "smollm-135m") or a local path; converts once.
        `draft_model` (default: qwen-0.5b for qwen-1.5b) loads lazily, only when a model draft is used. `dtype`
        (default bfloat16, where a forward over k <= 8 draft tokens costs about one 1-token forward on this CPU,
        results/specdec/README.md; in float32 any multi-row forward costs ~2x a one-row GEMV one, and batch invariance
        runs one-row GEMMs as four rows, so plain float32 decoding gets ~2x slower with it). `prefix_cache` keeps the
        KV of the messages before the last one (system prompt + worked example) for the next prompt that starts
        with them (a hit computes the same numbers as a miss). `batch_invariant` (rag/batch_invariant.py) makes a
        token's logits independent of how many tokens share its forward, so verifying k drafts in one forward
        reproduces plain decoding bit for bit, also in bf16."""
        threads = set_threads(threads)
        model, tokenizer = load_causal_lm(
            name_or_path, cache=cache_dir, threads=threads, device=device, dtype=dtype
        )
        return cls(model, tokenizer, name=os.fspath(name_or_path), threads=threads, draft_model=draft_model,
                   cache_dir=cache_dir, copy_candidates=copy_candidates, dtype=dtype, prefix_cache=prefix_cache,
                   batch_invariant=batch_invariant)

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

    def hidden_states(self, prompts: Sequence[Messages], layers: Sequence[int], *, pool: str = "last",
                      batch_size: int = 8) -> np.ndarray:  # [len(layers), n, hidden] float32
        """Pooled hidden states of chosen layers on each templated prompt (assistant turn opened), for probes.

        Layer 0 is the embedding output, -1 the last layer. "last" takes the last prompt token, "mean" averages
        the prompt's tokens."""
        return self.pooled_states(prompts, layers, pools=(pool,), batch_size=batch_size)[pool]

    def pooled_states(self, prompts: Sequence[Messages], layers: Sequence[int], *,
                      pools: Sequence[str] = ("last", "mean"), batch_size: int = 8) -> dict[str, np.ndarray]:
        """`hidden_states` for several poolings from one forward pass: pool -> [len(layers), n, hidden] float32.
        Prompts run length-sorted in right-padded batches, so real tokens never see pads and keep their positions."""
        import torch

        if isinstance(pools, str) or not pools or any(p not in ("last", "mean") for p in pools):
            raise ConfigError(f"pool must be 'last' or 'mean', got {pools!r}")
        if isinstance(prompts, (str, dict)) or not prompts:
            raise ConfigError("prompts must be a non-empty list of prompts (each a str or a list of messages)")
        positive_int(batch_size, "batch_size")
        n_states = int(self.model.config.num_hidden_layers) + 1
        layers = list(layers)
        bad = [x for x in layers if isinstance(x, bool) or not isinstance(x, int) or not -n_states <= x < n_states]
        if not layers or bad:
            raise ConfigError(f"layers must be ints in [{-n_states}, {n_states - 1}] ({self.name or 'this model'} "
                              f"has {n_states - 1} layers plus the embeddings at 0), got {layers!r}")
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.stop_token_ids[0]
        seqs = [self.encode(p)[0].tolist() for p in prompts]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))  # similar lengths share a batch: less padding
        out = {p: np.zeros((len(layers), len(seqs), int(self.model.config.hidden_size)), np.float32) for p in pools}
        with torch.inference_mode():
            for s in range(0, len(order), batch_size):
                rows = order[s:s + batch_size]
                chunk = [seqs[i] for i in rows]
                width = max(map(len, chunk))
                ids = torch.tensor([c + [pad] * (width - len(c)) for c in chunk], device=self.model.device)
                mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in chunk], device=self.model.device)
                hs = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
                h = torch.stack([hs[x] for x in layers]).float()  # [L, b, width, hidden]
                for p in pools:
                    if p == "last":
                        pooled = h[:, torch.arange(len(chunk)), mask.sum(1) - 1]  # [L, b, hidden]
                    else:
                        m = mask[None, :, :, None].float()
                        pooled = (h * m).sum(2) / m.sum(2)
                    out[p][:, rows] = pooled.cpu().numpy()
        return out

    def draft_lm(self) -> Any:
        """The draft causal LM, loaded on first use; it must share the target's vocabulary."""
        if self._draft_model is None:
            if not self.draft_model_name:
                raise ConfigError(
                    f"no draft model for {self.name!r}: load the generator with draft_model='qwen-0.5b' "
                    "(a model with the same tokenizer) or use draft='copy' / 'none'"
                )
            model, tokenizer = load_causal_lm(
                self.draft_model_name, cache=self._cache_dir, threads=self.threads, device=str(self.model.device),
                dtype=self._dtype,
            )
            if len(tokenizer) != len(self.tokenizer) or tokenizer.get_vocab() != self.tokenizer.get_vocab():
                raise ConfigError(
                    f"draft model {self.draft_model_name!r} has another vocabulary than {self.name!r}: "
                    "speculative decoding needs one shared tokenizer (qwen-0.5b drafts for qwen-1.5b)"
                )
            self._draft_model = model
        return self._draft_model

    def stream(
        self,
        messages: Messages,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        *,
        draft: str = DEFAULT_DRAFT,
        passages: Sequence[str] = (),
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> TokenStream:
        """An iterator of decoded text deltas as tokens are accepted; its `.result` is the Generation once done."""
        import torch

        positive_int(max_new_tokens, "max_new_tokens")
        if temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {temperature}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise ConfigError(f"top_k must be an int >= 0 (0 = off), got {top_k!r}")
        if not 0 < top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {top_p!r}")
        if isinstance(passages, str):
            raise ConfigError("passages must be a list of passage texts, not one str")
        input_ids = self.encode(messages)
        prompt = input_ids[0].tolist()
        if seed is None:  # follow torch's global RNG, so torch.manual_seed(...) makes sampling repeatable
            seed = int(torch.randint(0, 2**62, (1,)).item())
        rng = np.random.default_rng(seed)
        docs = _copy_docs(self.tokenizer, passages) if passages else [prompt]
        source = make_drafts(
            draft, copy_docs=docs, draft_model=self.draft_lm, copy_candidates=self.copy_candidates,
            copy_lengths=self.copy_lengths, copy_min_match=self.copy_min_match,
            temperature=temperature, top_k=top_k, top_p=top_p, rng=rng,
        )
        steps = decode(
            self.model, prompt, max_new_tokens=max_new_tokens, stop_ids=self.stop_token_ids, source=source,
            draft_name=draft, temperature=temperature, top_k=top_k, top_p=top_p, rng=rng,
            prefix_cache=self.prefix_cache,
            prefix_len=chat_prefix_len(self.tokenizer, messages, prompt) if self.prefix_cache is not None else 0,
        )
        return TokenStream(steps, self.tokenizer, len(prompt))

    def generate(
        self,
        messages: Messages,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        *,
        draft: str = DEFAULT_DRAFT,
        passages: Sequence[str] = (),
        on_token: Callable[[str], None] | None = None,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> Generation:
        """Complete the chat (greedy when temperature == 0) by exact speculative decoding from `draft`; the text
        equals plain decoding's. `passages` feed the copy draft; `on_token` gets text deltas as they are accepted."""
        stream = self.stream(
            messages, max_new_tokens, temperature, draft=draft, passages=passages, top_k=top_k, top_p=top_p,
            seed=seed,
        )
        try:
            for delta in stream:
                if on_token is not None:
                    on_token(delta)  # may raise (a cancelled request): the decode loop is closed below
        finally:
            stream.close()
        return stream.result

    def generate_batch(self, prompts: Sequence[Messages], max_new_tokens: int = 64, *,
                       batch_size: int = 8) -> list[Generation]:
        """Greedy completions of several prompts, decoded together in left-padded batches (one forward per token
        for up to `batch_size` rows: on this CPU a bf16 forward over 8 rows costs about one 1-row forward).
        Same text as `generate` up to logit near-ties (padding changes kernel shapes; rarer in float32). Each
        Generation's `seconds` is its batch's wall time divided by the rows in it (its share)."""
        import torch

        positive_int(max_new_tokens, "max_new_tokens")
        positive_int(batch_size, "batch_size")
        if isinstance(prompts, (str, dict)):
            raise ConfigError("prompts must be a list of prompts (each a str or a list of messages)")
        seqs = [self.encode(p)[0].tolist() for p in prompts]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))  # similar lengths share a batch: less padding
        out: list[Generation | None] = [None] * len(seqs)
        for s in range(0, len(order), batch_size):
            rows = order[s:s + batch_size]
            started = time.perf_counter()
            new = _greedy_batch(self.model, [seqs[i] for i in rows], max_new_tokens, self.stop_token_ids,
                                self._pad_id(), torch)
            share = (time.perf_counter() - started) / len(rows)
            for i, ids in zip(rows, new):
                text = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
                out[i] = Generation(text, len(seqs[i]), len(ids), share,
                                    DecodeStats(draft="batch", tokens=len(ids), seconds=share))
        return out  # type: ignore[return-value]  # every row filled above

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else self.stop_token_ids[0]


def _greedy_batch(model: Any, seqs: list[list[int]], max_new_tokens: int, stop_ids: Sequence[int], pad: int,
                  torch: Any) -> list[list[int]]:
    """Plain greedy decoding of left-padded rows with one KV cache; a row leaves the batch at a stop token or the
    budget (stop tokens excluded, as in rag.speculative.decode)."""
    from transformers import DynamicCache

    stops = set(int(t) for t in stop_ids)
    width = max(map(len, seqs))
    dev = model.device
    ids = torch.tensor([[pad] * (width - len(q)) + q for q in seqs], device=dev)
    mask = torch.tensor([[0] * (width - len(q)) + [1] * len(q) for q in seqs], device=dev)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    live = list(range(len(seqs)))  # original row of each batch row still decoding
    outs: list[list[int]] = [[] for _ in seqs]
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache,
                       use_cache=True, logits_to_keep=1).logits[:, -1]
        while True:
            nxt = torch.argmax(logits.float(), dim=-1).tolist()
            keep = []
            for b, t in enumerate(nxt):
                row = live[b]
                if t in stops:
                    continue
                outs[row].append(int(t))
                if len(outs[row]) < max_new_tokens:
                    keep.append(b)
            if not keep:
                break
            if len(keep) < len(live):  # finished rows leave the batch (and the cache)
                sel = torch.tensor(keep, device=dev)
                cache.batch_select_indices(sel)
                mask, pos = mask[sel], pos[sel]
                nxt = [nxt[b] for b in keep]
                live = [live[b] for b in keep]
            mask = torch.cat([mask, torch.ones((len(live), 1), dtype=mask.dtype, device=dev)], dim=1)
            pos = pos[:, -1:] + 1
            logits = model(input_ids=torch.tensor([[t] for t in nxt], device=dev), attention_mask=mask,
                           position_ids=pos, past_key_values=cache, use_cache=True).logits[:, -1]
    return outs


class TokenStream:
    """Iterates decoded text deltas (whole characters; leading/trailing whitespace of the answer dropped, so the
    deltas concatenate to `result.text`); `result` is the Generation once the iterator is exhausted."""

    def __init__(self, steps: Iterator[list[int]], tokenizer: Any, n_prompt: int) -> None:
        self._steps = steps
        self._tokenizer = tokenizer
        self._n_prompt = n_prompt
        self._ids: list[int] = []
        self._sent = ""
        self._result: Generation | None = None

    def __iter__(self) -> TokenStream:
        return self

    def close(self) -> None:
        """Stop decoding now (an abandoned or cancelled answer); `result` stays None unless it had finished."""
        self._steps.close()

    def __next__(self) -> str:
        while self._result is None:
            try:
                self._ids.extend(next(self._steps))
            except StopIteration as stop:
                self._finish(stop.value)
                break
            text = self._tokenizer.decode(self._ids, skip_special_tokens=True).lstrip()
            if text.endswith("\ufffd"):  # a multi-byte character split across tokens: wait for the rest
                continue
            ready = text.rstrip()  # trailing space may still end the answer (then it is stripped): hold it
            if len(ready) > len(self._sent) and ready.startswith(self._sent):
                delta, self._sent = ready[len(self._sent):], ready
                return delta
        final = self._result.text if self._result is not None else ""
        if len(final) > len(self._sent) and final.startswith(self._sent):
            delta, self._sent = final[len(self._sent):], final
            return delta
        raise StopIteration

    def _finish(self, stats: DecodeStats) -> None:
        text = self._tokenizer.decode(self._ids, skip_special_tokens=True).strip()
        if not text.startswith(self._sent):
            logger.warning("streamed text %r is not a prefix of the final decode %r", self._sent, text)
        logger.debug("generated %d tokens (%s) in %.2f s", stats.tokens, stats.draft, stats.seconds)
        self._result = Generation(text, self._n_prompt, len(self._ids), stats.seconds, stats)

    @property
    def result(self) -> Generation:
        """The Generation; consumes whatever the iterator has not yet yielded."""
        for _ in self:
            pass
        return self._result  # type: ignore[return-value]  # set by _finish when the steps end


def _copy_docs(tokenizer: Any, passages: Sequence[str]) -> list[list[int]]:
    """Token ids of each passage with a leading space, as its words appear mid-answer (see indexers.ngram)."""
    texts = [" " + " ".join(str(p).split()) for p in passages]
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


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
