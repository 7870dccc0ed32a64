"""Exact speculative decoding over a Hugging Face causal LM: draft sources, KV-cache reuse and rollback.

Each step feeds the pending token plus k draft tokens through the target once (its KV cache keeps the whole
prefix, so nothing is re-encoded), keeps what `kernels.spec_verify` accepts and crops the rejected tail from the
cache. Draft sources: `none` (plain decoding), `model` (a smaller LM with the same vocabulary proposes an
adaptive gamma tokens), `copy` (the longest suffix of the generated tokens found in the evidence passages via an
FM-index proposes what follows it there, REST / prompt-lookup style), `copy+model` (copy when it matches).
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from indexers.errors import ConfigError
from kernels import fm_index as fm
from kernels import spec_verify as sv
from rag.prefix_cache import PrefixCache

__all__ = ["DRAFTS", "DraftName", "DecodeStats", "Proposal", "DraftSource", "CopyDraft", "ModelDraft",
           "KVModel", "decode", "make_drafts"]

log = logging.getLogger(__name__)

DraftName = Literal["none", "model", "copy", "copy+model"]
DRAFTS: tuple[str, ...] = ("none", "model", "copy", "copy+model")
_SEP = 2**32 - 1  # separates passages in the copy index; never a token id


@dataclass(frozen=True)
class DecodeStats:
    """What one generation cost. `mean_accepted` = tokens emitted per decoding forward (1.0 for plain decoding);
    `acceptance` = accepted / proposed draft tokens per source; `seconds` includes the prompt prefill."""

    draft: str = "none"
    tokens: int = 0
    target_forwards: int = 0
    mean_accepted: float = 0.0
    acceptance: dict[str, float] = field(default_factory=dict)
    tokens_per_s: float = 0.0
    seconds: float = 0.0
    prefill_seconds: float = 0.0
    decode_tokens_per_s: float = 0.0  # after the prefill: what drafting speeds up
    proposed: dict[str, int] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)
    drafted_steps: int = 0  # decoding forwards that verified a draft
    prefix_reused: int = 0  # prompt tokens restored from the prefix cache instead of prefilled
    phases: dict[str, float] = field(default_factory=dict)  # seconds: prefill, draft, verify, rollback, other

    def to_dict(self) -> dict[str, Any]:
        return {"draft": self.draft, "tokens": self.tokens, "target_forwards": self.target_forwards,
                "mean_accepted": round(self.mean_accepted, 4),
                "acceptance": {k: round(v, 4) for k, v in self.acceptance.items()},
                "tokens_per_s": round(self.tokens_per_s, 3), "seconds": round(self.seconds, 4),
                "prefill_seconds": round(self.prefill_seconds, 4),
                "decode_tokens_per_s": round(self.decode_tokens_per_s, 3),
                "proposed": dict(self.proposed), "accepted": dict(self.accepted),
                "drafted_steps": self.drafted_steps, "prefix_reused": self.prefix_reused,
                "phases": {k: round(v, 4) for k, v in self.phases.items()}}


@dataclass(frozen=True)
class Proposal:
    """Draft candidates after the pending token (best first); `q` [k, V] the draft's probabilities when sampled."""

    source: str
    candidates: list[list[int]]
    q: np.ndarray | None = None


class DraftSource(Protocol):
    """Proposes tokens to follow `tokens` (the prompt + generated ids, the pending token last)."""

    name: str

    def propose(self, tokens: list[int], n_prompt: int, k_max: int) -> Proposal | None: ...

    def feedback(self, proposed: int, accepted: int) -> None: ...


class KVModel:
    """A causal LM with its own DynamicCache and the ids it holds; `extend` feeds only what the cache lacks."""

    def __init__(self, model: Any) -> None:
        from transformers import DynamicCache

        self.model = model
        self.cache = DynamicCache(config=model.config)
        self.ids: list[int] = []

    def rollback(self, keep: int) -> None:
        """Drop cached tokens past the first `keep` (rejected drafts)."""
        drop = len(self.ids) - keep
        if drop > 0:
            self.cache.crop(-drop)
            del self.ids[keep:]

    def forward(self, tokens: Sequence[int], last_only: bool = False) -> Any:  # [n or 1, V] float32 logits
        """Run `tokens` on top of the cache (one forward); the logits after each of them."""
        import torch

        if not tokens:
            raise ValueError("forward needs at least one token")
        ids = torch.tensor([list(tokens)], dtype=torch.long, device=self.model.device)
        with torch.inference_mode():
            out = self.model(input_ids=ids, past_key_values=self.cache, use_cache=True,
                             logits_to_keep=1 if last_only else 0)
        self.ids.extend(int(t) for t in tokens)
        return out.logits[0].float()

    def forward_batch(self, candidates: list[list[int]]) -> Any:  # [c, k, V] float32
        """One forward over several same-length continuations of the cached prefix (the cache is duplicated)."""
        import torch

        self.cache.batch_repeat_interleave(len(candidates))
        ids = torch.tensor(candidates, dtype=torch.long, device=self.model.device)
        with torch.inference_mode():
            return self.model(input_ids=ids, past_key_values=self.cache, use_cache=True).logits.float()

    def keep_row(self, row: int, tokens: Sequence[int]) -> None:
        """After `forward_batch`: keep one candidate's cache row, whose tokens are `tokens`."""
        import torch

        self.cache.batch_select_indices(torch.tensor([row], device=self.model.device))
        self.ids.extend(int(t) for t in tokens)

    def sync(self, tokens: Sequence[int]) -> None:
        """Roll back to the longest common prefix with `tokens`, so the next forward feeds the rest."""
        n = 0
        limit = min(len(self.ids), len(tokens))
        while n < limit and self.ids[n] == tokens[n]:
            n += 1
        self.rollback(n)


class CopyDraft:
    """Copies from the evidence: the longest suffix of the generated ids (<= `max_suffix`) found in the passages'
    token ids proposes the tokens after its occurrences; distinct continuations ranked by frequency.

    The draft length adapts: it starts at `min_tokens`, doubles after a fully accepted draft (a quote is being
    copied) up to `max_tokens`, and falls back to `min_tokens` after a miss. On this CPU a bf16 forward over <= 8
    new tokens costs about one 1-token forward, 16 about 1.5x (results/specdec/README.md)."""

    name = "copy"

    def __init__(self, documents: Sequence[Sequence[int]], max_candidates: int = 1, min_match: int = 1,
                 max_suffix: int = 32, max_occurrences: int = 64, min_tokens: int = 8, max_tokens: int = 32) -> None:
        if max_candidates < 1 or min_match < 1:
            raise ConfigError("CopyDraft needs max_candidates >= 1 and min_match >= 1")
        if not 1 <= min_tokens <= max_tokens:
            raise ConfigError(f"CopyDraft needs 1 <= min_tokens <= max_tokens, got {min_tokens} and {max_tokens}")
        self.min_tokens, self.max_tokens = min_tokens, max_tokens
        self.length = min_tokens  # the next draft's length cap
        text: list[int] = []
        for doc in documents:
            if doc:
                text.extend(int(t) for t in doc)
                text.append(_SEP)
        self.text = np.asarray(text, dtype=np.int64)  # [n]
        self.index = fm.build(self.text) if text else None
        self.max_candidates, self.min_match = max_candidates, min_match
        self.max_suffix, self.max_occurrences = max_suffix, max_occurrences

    def propose(self, tokens: list[int], n_prompt: int, k_max: int) -> Proposal | None:
        generated = tokens[n_prompt:]
        k_max = min(k_max, self.length)
        if self.index is None or not generated or k_max < 1:
            return None
        m = fm.longest_suffix_match(self.index, generated[-self.max_suffix:])
        if m.length < self.min_match:
            return None
        starts = fm.locate_interval(self.index, m.sp, m.ep, m.length, self.max_occurrences) + m.length
        counts: Counter[tuple[int, ...]] = Counter()
        for s in sorted(int(x) for x in starts):  # text order, so ties keep the earliest passage first
            cont = self.text[s: s + k_max]
            cut = np.flatnonzero(cont == _SEP)
            cont = cont[: cut[0]] if len(cut) else cont
            if len(cont):
                counts[tuple(int(t) for t in cont)] += 1
        if not counts:
            return None
        best = [list(c) for c, _ in counts.most_common(self.max_candidates)]
        return Proposal(self.name, best)

    def feedback(self, proposed: int, accepted: int) -> None:
        """Double the length after a draft accepted whole at full length; back to `min_tokens` after a miss."""
        if accepted < proposed:
            self.length = self.min_tokens
        elif proposed >= self.length:
            self.length = min(self.max_tokens, 2 * self.length)


class ModelDraft:
    """A smaller LM with the target's vocabulary drafts gamma tokens (greedy, or sampled from its warped q).
    gamma grows by 2 after a fully accepted draft and shrinks by 1 otherwise, within [1, max_gamma]."""

    name = "model"

    def __init__(self, model: Any, gamma: int = 4, max_gamma: int = 8, temperature: float = 0.0, top_k: int = 0,
                 top_p: float = 1.0, rng: np.random.Generator | None = None) -> None:
        self.lm = KVModel(model)
        self.gamma, self.max_gamma = gamma, max_gamma
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.rng = rng or np.random.default_rng(0)

    def propose(self, tokens: list[int], n_prompt: int, k_max: int) -> Proposal | None:
        import torch

        k = min(self.gamma, k_max)
        if k < 1:
            return None
        self.lm.sync(tokens)
        draft: list[int] = []
        qs = []
        with torch.inference_mode():
            feed = tokens[len(self.lm.ids):]
            for _ in range(k):
                logits = self.lm.forward(feed, last_only=True)[-1]
                if self.temperature > 0:
                    q = sv.warp_probs(logits.numpy(), self.temperature, self.top_k, self.top_p)[0]
                    t = sv.sample_index(q, float(self.rng.random()))
                    qs.append(q)
                else:
                    t = int(torch.argmax(logits))
                draft.append(t)
                feed = [t]
        return Proposal(self.name, [draft], np.stack(qs) if qs else None)

    def feedback(self, proposed: int, accepted: int) -> None:
        self.gamma = min(self.max_gamma, self.gamma + 2) if accepted == proposed else max(1, self.gamma - 1)


class _Chain:
    """copy+model: the copy draft when the evidence matches, else the model draft."""

    name = "copy+model"

    def __init__(self, sources: Sequence[DraftSource]) -> None:
        self.sources = list(sources)
        self._last: DraftSource | None = None

    def propose(self, tokens: list[int], n_prompt: int, k_max: int) -> Proposal | None:
        for s in self.sources:
            p = s.propose(tokens, n_prompt, k_max)
            if p is not None:
                self._last = s
                return p
        return None

    def feedback(self, proposed: int, accepted: int) -> None:
        if self._last is not None:
            self._last.feedback(proposed, accepted)


def make_drafts(draft: str, *, copy_docs: Sequence[Sequence[int]] = (), draft_model: Callable[[], Any] | None = None,
                copy_candidates: int = 1, copy_lengths: tuple[int, int] = (8, 32), copy_min_match: int = 1,
                temperature: float = 0.0,
                top_k: int = 0, top_p: float = 1.0,
                rng: np.random.Generator | None = None) -> DraftSource | None:
    """The draft source registered under `draft` (None for plain decoding); `draft_model` loads the draft LM lazily."""
    if draft not in DRAFTS:
        raise ConfigError(f"unknown draft source {draft!r}: choose one of {', '.join(DRAFTS)}")
    if draft == "none":
        return None
    parts: list[DraftSource] = []
    if "copy" in draft:
        parts.append(CopyDraft(copy_docs, max_candidates=copy_candidates, min_match=copy_min_match,
                               min_tokens=copy_lengths[0], max_tokens=copy_lengths[1]))
    if "model" in draft:
        if draft_model is None:
            raise ConfigError(f"draft {draft!r} needs a draft model: load the generator with draft_model='qwen-0.5b'")
        parts.append(ModelDraft(draft_model(), temperature=temperature, top_k=top_k, top_p=top_p, rng=rng))
    return parts[0] if len(parts) == 1 else _Chain(parts)


def decode(target: Any, prompt_ids: Sequence[int], *, max_new_tokens: int, stop_ids: Sequence[int],
           source: DraftSource | None = None, draft_name: str = "none", temperature: float = 0.0, top_k: int = 0,
           top_p: float = 1.0, rng: np.random.Generator | None = None,
           copy_max_tokens: int = 32, prefix_cache: PrefixCache | None = None,
           prefix_len: int = 0) -> Iterator[list[int]]:
    """Yield the accepted token ids step by step (stop tokens excluded); return DecodeStats (StopIteration.value).

    Greedy when temperature == 0: output is token-identical to plain greedy decoding of `target`. Otherwise the
    speculative sampling rule keeps the output distributed as the (temperature/top-k/top-p) warped target.
    With `prefix_cache`, the first `prefix_len` prompt tokens (a constant system prompt + examples) are prefilled in
    their own forward, or restored from the cache when an earlier call prefilled the same ids: a hit or a miss
    computes the same numbers, so the output never depends on the cache's state."""
    import torch

    greedy = temperature == 0
    rng = rng or np.random.default_rng()
    stops = set(int(s) for s in stop_ids)
    lm = KVModel(target)
    proposed: Counter[str] = Counter()
    accepted_n: Counter[str] = Counter()
    started = time.perf_counter()
    tokens = [int(t) for t in prompt_ids]
    n_prompt = len(tokens)
    n_out, forwards, decode_forwards, drafted = 0, 0, 0, 0
    clock = {"draft": 0.0, "verify": 0.0, "rollback": 0.0}  # seconds per decoding phase

    def pick(logits_row: Any) -> int:
        if greedy:
            return int(torch.argmax(logits_row))
        p = sv.warp_probs(logits_row.numpy(), temperature, top_k, top_p)[0]
        return sv.sample_index(p, float(rng.random()))

    stopped = False

    def emit(new: list[int]) -> tuple[list[int], bool]:
        nonlocal n_out, stopped
        out = []
        for t in new:
            if n_out >= max_new_tokens:
                return out, True
            if t in stops:
                stopped = True
                return out, True
            out.append(t)
            n_out += 1
        return out, n_out >= max_new_tokens

    # No inference_mode() around this body: a `with` spanning a `yield` leaks thread-local grad state into
    # whichever thread resumes or garbage-collects an abandoned stream; KVModel's forwards set it themselves.
    start = reused = 0
    if prefix_cache is not None and 0 < prefix_len < len(tokens):  # the prefix is prefilled alone, hit or miss
        if prefix_cache.restore(lm, tokens[:prefix_len]):
            reused = prefix_len
        else:
            lm.forward(tokens[:prefix_len], last_only=True)
            prefix_cache.store(lm)
        start = prefix_len
    pending = pick(lm.forward(tokens[start:], last_only=True)[-1])
    forwards += 1
    prefill = time.perf_counter() - started
    done = False
    while not done:
        out, done = emit([pending])
        if out:
            yield out
        if done:
            break
        tokens.append(pending)
        budget = max_new_tokens - n_out  # tokens still allowed after the pending one is emitted
        t0 = time.perf_counter()
        prop = source.propose(tokens, n_prompt, min(budget, copy_max_tokens)) if source and budget > 0 else None
        cands = [c[:budget] for c in prop.candidates if c] if prop else []
        t1 = time.perf_counter()
        clock["draft"] += t1 - t0
        if not cands:
            logits = lm.forward([pending])
            forwards += 1
            decode_forwards += 1
            pending = pick(logits[-1])
            clock["verify"] += time.perf_counter() - t1
            continue
        if len(cands) > 1 and greedy:  # several copy candidates: one batched forward, keep the best row
            k = min(len(c) for c in cands)
            cands = [c[:k] for c in cands]
            base = len(lm.ids)
            logits = lm.forward_batch([[pending] + c for c in cands])
            verdicts = [sv.verify_greedy(torch.argmax(logits[i], dim=-1).tolist(), c) for i, c in enumerate(cands)]
            best = max(range(len(cands)), key=lambda i: (verdicts[i].accepted, -i))
            lm.keep_row(best, [pending] + cands[best])
            draft, verdict = cands[best], verdicts[best]
        else:  # one path; in sampling mode only the best copy candidate (the rule is for one draft path)
            draft = cands[0]
            base = len(lm.ids)
            logits = lm.forward([pending] + draft)  # [k + 1, V]
            if greedy:
                verdict = sv.verify_greedy(torch.argmax(logits, dim=-1).tolist(), draft)
            else:
                p = sv.warp_probs(logits.numpy(), temperature, top_k, top_p)
                q = prop.q[: len(draft)] if prop.q is not None else _one_hot(draft, p.shape[1])
                verdict = sv.verify_sampling(p, q, draft, rng.random(len(draft)), float(rng.random()))
        forwards += 1
        decode_forwards += 1
        drafted += 1
        t2 = time.perf_counter()
        clock["verify"] += t2 - t1
        proposed[prop.source] += len(draft)
        accepted_n[prop.source] += verdict.accepted
        source.feedback(len(draft), verdict.accepted)
        lm.rollback(base + 1 + verdict.accepted)  # keep the pending token and the accepted drafts
        clock["rollback"] += time.perf_counter() - t2
        kept = draft[: verdict.accepted]
        out, done = emit(kept)
        if out:
            yield out
        tokens.extend(kept)
        pending = verdict.token
    seconds = time.perf_counter() - started
    decode_s = seconds - prefill
    phases = {"prefill": prefill, **clock, "other": max(0.0, decode_s - sum(clock.values()))}
    return DecodeStats(
        draft=draft_name, tokens=n_out, target_forwards=forwards,
        mean_accepted=(n_out + stopped - 1) / decode_forwards if decode_forwards else 1.0,
        acceptance={s: accepted_n[s] / proposed[s] for s in proposed},
        tokens_per_s=n_out / seconds if seconds > 0 else 0.0, seconds=seconds, prefill_seconds=prefill,
        decode_tokens_per_s=(n_out - 1) / decode_s if decode_s > 0 and n_out > 1 else 0.0,
        proposed=dict(proposed), accepted=dict(accepted_n), drafted_steps=drafted, prefix_reused=reused,
        phases=phases)


def _one_hot(draft: Sequence[int], vocab: int) -> np.ndarray:  # [k, V] float64
    q = np.zeros((len(draft), vocab), dtype=np.float64)
    q[np.arange(len(draft)), list(draft)] = 1.0
    return q
