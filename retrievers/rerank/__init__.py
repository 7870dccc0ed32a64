"""Second-stage rerankers: re-score a retriever's top hits with a model that reads query and passage together.

Four backends behind one `load_reranker(spec)`:
- ``none``: keeps the retriever's order;
- ``llm[:MODEL]``: a causal LM as a pointwise judge, P(Yes) for "does the passage contain the answer?";
  the instruction+question prefix is run once per query and its KV cache expanded over each batch of passages;
- ``cross-encoder:PATH``: any Hugging Face sequence-classification / sentence-transformers CrossEncoder
  directory (adarag's own, trained by `adarag reranker train`, is one); only the passage is ever truncated;
- ``ltr[:DIR]``: a linear model over cheap features of the first-stage head (retrievers.rerank.ltr; the default, see
  DEFAULT_RERANKER), trained on judged queries by `adarag reranker train --kind ltr` in seconds.
Scores are in [0, 1] (P(yes), sigmoid or softmax of the logits or of the linear score) so the passage selector
can use them as is.
"""
from __future__ import annotations

from typing import Any

from indexers.errors import ConfigError
from indexers.models import resolve
from retrievers.rerank.base import (
    DEFAULT_DEPTH,
    DEFAULT_RERANKER,
    NoReranker,
    Reranker,
    RerankerBase,
    hit_text,
    interpolate_scores,
    rerank_hits,
)
from retrievers.rerank.cross_encoder import CrossEncoderReranker, cross_encoder_dir
from retrievers.rerank.llm import DEFAULT_JUDGE, LLMJudge
from retrievers.rerank.ltr import BUNDLED, LTRReranker, load_ltr

__all__ = [
    "DEFAULT_DEPTH",
    "DEFAULT_JUDGE",
    "DEFAULT_RERANKER",
    "CrossEncoderReranker",
    "LLMJudge",
    "LTRReranker",
    "NoReranker",
    "Reranker",
    "RerankerBase",
    "check_reranker_spec",
    "hit_text",
    "interpolate_scores",
    "load_reranker",
    "rerank_hits",
]


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
        cross_encoder_dir(arg)
    elif kind == "ltr":
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
        return LTRReranker(arg or None)
    return CrossEncoderReranker(arg, **kw)
