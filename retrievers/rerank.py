"""Second-stage rerankers: re-score a retriever's top hits with a model that reads query and passage together.

Four backends behind one `load_reranker(spec)`:
- ``none``: keeps the retriever's order;
- ``llm[:MODEL]``: a causal LM as a pointwise judge, P(Yes) for "does the passage contain the answer?";
  the instruction+question prefix is run once per query and its KV cache expanded over each batch of passages;
- ``cross-encoder:PATH``: any Hugging Face sequence-classification / sentence-transformers CrossEncoder
  directory (adarag's own, trained by `adarag reranker train`, is one); only the passage is ever truncated;
- ``ltr[:DIR]``: a linear model over cheap features of the first-stage head (retrievers.ltr; the default, see
  DEFAULT_RERANKER), trained on judged queries by `adarag reranker train --kind ltr` in seconds.
Scores are in [0, 1] (P(yes), sigmoid or softmax of the logits or of the linear score) so the passage selector
can use them as is.
"""
from __future__ import annotations

import copy
import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from indexers.errors import ConfigError, ModelError, missing
from indexers.models import pick_device, resolve, set_threads
from indexers.types import Hit, passage_text
from retrievers.fusion import score_fusion

__all__ = [
    "DEFAULT_DEPTH",
    "DEFAULT_JUDGE",
    "DEFAULT_RERANKER",
    "CrossEncoderReranker",
    "LLMJudge",
    "NoReranker",
    "Reranker",
    "check_reranker_spec",
    "hit_text",
    "interpolate_scores",
    "load_reranker",
    "rerank_hits",
]

log = logging.getLogger(__name__)

DEFAULT_DEPTH = 20
"""Rerank the top 20: the LLM judge costs ~0.1-0.4 s per passage on a CPU, and recall@20 of fused is ~0.9 here."""

DEFAULT_JUDGE = "qwen-1.5b"
"""The judge of spec ``llm``. qwen-0.5b is no judge: on probes P(yes) 0.29 (answer) vs 0.27 / 0.29 (unrelated),
and as fused+rerank (depth 10) it cut nDCG@10 from 0.794 to 0.631 on 15 held-out HotpotQA queries; qwen-1.5b
separates the same probes 0.97 vs 0.50 / 0.50, but ranks worse than fused: on the first 10 held-out HotpotQA
queries, depth 10, nDCG@10 0.765 vs fused 0.828 (and `ltr` 0.881 at depth 10), at 0.3 passages/s on one core
(results/reranker-ltr/judge-qwen-1.5b.md).
"""

DEFAULT_RERANKER = "ltr"
"""What `ask`, the SDK and a bare `--rerank` use: the bundled feature reranker (retrievers.ltr), the only backend
measured to beat fused, and the cheapest (~7,000 passages/s, no model). Held out (results/reranker-ltr): HotpotQA
nDCG@10 0.836 -> 0.896 (150 queries), FanOutQA-leaf (never trained on) 0.815 -> 0.887; the passage selector's
supporting-paragraph recall at 300 / 600 tokens 0.667 / 0.833 -> 0.773 / 0.903. The cross-encoder adarag trains
on this CPU reaches 0.418 alone and adds nothing interpolated (results/reranker-train); qwen-0.5b as judge 0.577."""

JUDGE_INSTRUCTION = "Does the passage contain the answer to the question? Answer Yes or No."
_PLACEHOLDER = "\x00PASSAGE\x00"


def hit_text(hit: Hit) -> str:
    """The passage as a reranker reads it: as the prompt lists it (indexers.types.passage_text)."""
    return passage_text(hit.title, hit.text)


def rerank_hits(hits: Sequence[Hit], scores: Sequence[float], depth: int) -> list[Hit]:
    """Hits[:depth] re-scored with `scores` and sorted (ties keep retriever order), then the rest, scored below.

    The tail keeps its retriever order with scores strictly between 0 and the lowest reranked score (0 when
    that score is 0), so every score stays finite and >= 0 and the ranking stays sorted by score.
    """
    head = list(hits[:depth])
    if len(scores) != len(head):
        raise ValueError(f"{len(scores)} scores for {len(head)} hits")
    order = sorted(range(len(head)), key=lambda i: -scores[i])  # stable: ties keep retriever order
    out = [replace(head[i], score=float(scores[i])) for i in order]
    tail = list(hits[depth:])
    floor = min((float(s) for s in scores), default=1.0)
    n = len(tail)
    out += [replace(h, score=floor * (n - j) / (n + 1)) for j, h in enumerate(tail)]
    return out


INTERPOLATION_FLOOR = 0.01
"""Interpolated scores live in [0.01, 1]: a floor above 0 keeps the hits below the rerank depth (scored under
the lowest reranked one by `rerank_hits`) in their retriever order instead of all tied at 0."""


def interpolate_scores(first_stage: Sequence[float], ce: Sequence[float], weight: float) -> list[float]:
    """weight * minmax(ce) + (1 - weight) * minmax(first stage) per query (fusion.score_fusion), mapped into
    [INTERPOLATION_FLOOR, 1]: the standard reranker/first-stage interpolation."""
    if not (0.0 <= weight <= 1.0):
        raise ConfigError(f"interpolation weight must be in [0, 1], got {weight}")
    keys = list(range(len(ce)))
    fused = dict(score_fusion([(keys, list(ce)), (keys, list(first_stage))], [weight, 1.0 - weight], "minmax"))
    return [INTERPOLATION_FLOOR + (1.0 - INTERPOLATION_FLOOR) * fused[i] for i in keys]


def _check_depth(depth: object) -> int:
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise ConfigError(f"rerank depth must be a positive int, got {depth!r}")
    return depth


def _check_texts(query: object, texts: object) -> list[str]:
    if not isinstance(query, str) or not query.strip():
        raise ConfigError("the rerank query must be a non-blank str")
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError("texts must be a sequence of str, not one str: wrap it in a list")
    return [str(t) for t in texts]


@runtime_checkable
class Reranker(Protocol):
    """Re-scores (query, passage) pairs; `warm_up()` loads the model (idempotent), construction is cheap."""

    name: str

    def warm_up(self) -> None: ...

    def score(self, query: str, texts: Sequence[str]) -> list[float]: ...

    def rerank(self, query: str, hits: Sequence[Hit], depth: int = DEFAULT_DEPTH) -> list[Hit]: ...


class _Base:
    """`rerank` over `score`: shared by every model backend."""

    name: str

    def warm_up(self) -> None:
        raise NotImplementedError

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        raise NotImplementedError

    def rerank(self, query: str, hits: Sequence[Hit], depth: int = DEFAULT_DEPTH) -> list[Hit]:
        """The top `depth` hits re-scored and sorted, the rest after them (see `rerank_hits`)."""
        depth = _check_depth(depth)
        head = list(hits[:depth])
        return rerank_hits(hits, self.score(query, [hit_text(h) for h in head]) if head else [], depth)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class NoReranker(_Base):
    """Keeps the retriever's ranking and scores: spec ``none``."""

    name = "none"

    def warm_up(self) -> None:
        return None

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """No model: every passage scores 0 (rerank() does not call this and keeps retriever scores)."""
        return [0.0] * len(_check_texts(query, texts))

    def rerank(self, query: str, hits: Sequence[Hit], depth: int = DEFAULT_DEPTH) -> list[Hit]:
        _check_depth(depth)
        return list(hits)


def _torch() -> Any:
    for module in ("torch", "transformers"):
        if importlib.util.find_spec(module) is None:
            raise missing("generate", module)
    import torch

    return torch


def _length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices in batches of similar length (longest first): less padding per batch."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


class LLMJudge(_Base):
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
        torch = _torch()
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
        texts = _check_texts(query, texts)
        if not texts:
            return []
        self.warm_up()
        torch = _torch()
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
            for idx in _length_batches([len(r) for r in rows], self.batch_size):
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


class CrossEncoderReranker(_Base):
    """A sequence-classification model from a local dir; query and passage read as one pair, batched.

    One logit -> sigmoid, two or more -> softmax's last class. Truncation is `only_second`: the passage is
    cut to the model's max length, the query never (a query too long for the model is a ConfigError).
    A dir trained by `adarag reranker train` is checksum-verified on load; `interpolate` = w ranks by
    w * CE + (1 - w) * first-stage score (each min-max scaled per query); None takes the weight the trainer
    tuned on its tuning queries (1.0, CE alone, when there is none), and max_length None its training length.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None, batch_size: int = 32,
                 device: str | None = None, max_length: int | None = None,
                 interpolate: float | None = None) -> None:
        path = _cross_encoder_dir(path)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.path = path
        self.name = f"cross-encoder:{path}"
        self.threads = threads
        self.batch_size = batch_size
        self.device = device
        self.max_length = max_length
        if interpolate is not None and not 0.0 <= interpolate <= 1.0:
            raise ConfigError(f"interpolate must be in [0, 1] (1 = cross-encoder only), got {interpolate}")
        self.interpolate = interpolate
        self.manifest: dict[str, Any] | None = None
        self.model: Any = None
        self.tokenizer: Any = None

    def warm_up(self) -> None:
        if self.model is not None:
            return
        _torch()
        import transformers

        from retrievers.rerank_train import MANIFEST_FILE, verify_reranker_dir

        if (self.path / MANIFEST_FILE).exists():  # adarag's own: refuse a corrupt or half-copied dir
            self.manifest = verify_reranker_dir(self.path)
            if self.interpolate is None:
                self.interpolate = (self.manifest.get("interpolation") or {}).get("weight")
            if self.max_length is None:  # score at the length it was trained and its weight tuned at
                self.max_length = (self.manifest.get("params") or {}).get("max_length")

        set_threads(self.threads)
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            self.model = transformers.AutoModelForSequenceClassification.from_pretrained(
                self.path, local_files_only=True)
        except (OSError, ValueError) as error:
            raise ModelError(f"could not load a cross-encoder from {self.path}: {error}") from error
        self.model.to(pick_device(self.device)).eval()
        limits = [self.max_length, getattr(self.model.config, "max_position_embeddings", None)]
        if self.tokenizer.model_max_length and self.tokenizer.model_max_length < 100_000:
            limits.append(self.tokenizer.model_max_length)
        self.max_length = min(x for x in limits if x) if any(limits) else 512

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        texts = _check_texts(query, texts)
        if not texts:
            return []
        self.warm_up()
        torch = _torch()
        n_query = len(self.tokenizer.encode(query, add_special_tokens=False))
        if n_query + 8 > self.max_length:
            raise ConfigError(f"the query is {n_query} tokens; {self.name} reads at most {self.max_length} per "
                              "pair and never cuts the query: shorten it")
        out: list[float] = [0.0] * len(texts)
        with torch.inference_mode():
            for idx in _length_batches([len(t) for t in texts], self.batch_size):
                enc = self.tokenizer([query] * len(idx), [texts[i] for i in idx], truncation="only_second",
                                     max_length=self.max_length, padding=True, return_tensors="pt")
                enc = {k: v.to(self.model.device) for k, v in enc.items()}
                logits = self.model(**enc).logits.float()  # [b, n_labels]
                probs = logits[:, 0].sigmoid() if logits.shape[1] == 1 else logits.softmax(-1)[:, -1]
                for j, i in enumerate(idx):
                    out[i] = float(probs[j])
        return out

    def rerank(self, query: str, hits: Sequence[Hit], depth: int = DEFAULT_DEPTH) -> list[Hit]:
        """As `_Base.rerank`, mixing in the first-stage scores when the interpolation weight is below 1."""
        depth = _check_depth(depth)
        head = list(hits[:depth])
        scores = self.score(query, [hit_text(h) for h in head]) if head else []  # warms up: sets interpolate
        w = 1.0 if self.interpolate is None else float(self.interpolate)
        if head and w < 1.0:
            scores = interpolate_scores([h.score for h in head], scores, w)
        return rerank_hits(hits, scores, depth)


def _cross_encoder_dir(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not (path / "config.json").exists():
        raise ConfigError(f"{path} is not a cross-encoder directory (no config.json): pass a Hugging Face "
                          "sequence-classification / sentence-transformers CrossEncoder dir, e.g. one made by "
                          "`adarag reranker train`")
    return path


def check_reranker_spec(spec: object) -> tuple[str, str]:
    """(kind, argument) of a usable reranker spec, else a ConfigError saying why; cheap: model names resolved,
    directories checked, the small LTR weights file verified, no model loaded (so a bad spec fails in ms)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"reranker spec must be a non-empty str, got {spec!r}")
    kind, _, arg = spec.strip().partition(":")
    if kind == "none" and not arg:
        pass
    elif kind == "llm":
        resolve(arg or DEFAULT_JUDGE, "causal-lm")
    elif kind in ("cross-encoder", "adarag") and arg:
        _cross_encoder_dir(arg)
    elif kind == "ltr":
        from retrievers.ltr import BUNDLED, load_ltr

        load_ltr(arg or BUNDLED)
    else:
        raise ConfigError(f"unknown reranker {spec!r}: use none, llm, llm:MODEL (e.g. llm:qwen-1.5b), "
                          "cross-encoder:PATH (a local sequence-classification model dir), ltr (bundled feature "
                          "weights) or ltr:DIR (a feature reranker from `adarag reranker train --kind ltr`)")
    return kind, arg


def load_reranker(spec: str, *, threads: int | None = None, batch_size: int | None = None,
                  device: str | None = None) -> Reranker:
    """A reranker from a spec: ``none``, ``llm``, ``llm:MODEL`` (registry name or path), ``cross-encoder:PATH``,
    ``ltr`` (the bundled feature weights) or ``ltr:DIR``.

    Cheap: the spec is checked (`check_reranker_spec`), nothing loads until `warm_up()` or the first `score()`.
    """
    kind, arg = check_reranker_spec(spec)
    kw: dict[str, Any] = {"threads": threads, "device": device}
    if batch_size is not None:
        kw["batch_size"] = batch_size
    if kind == "none":
        return NoReranker()
    if kind == "llm":
        return LLMJudge(arg or DEFAULT_JUDGE, **kw)
    if kind == "ltr":
        from retrievers.ltr import LTRReranker

        return LTRReranker(arg or None)
    return CrossEncoderReranker(arg, **kw)
