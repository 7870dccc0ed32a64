"""The four search modes the controller chooses between, each a plain function of (question, ModeContext).

- `none`: the model answers alone (closed book);
- `one_shot`: retrieve once with the question, answer from the passages;
- `iterative` (IRCoT, Trivedi et al. 2023): alternate one chain-of-thought sentence and a retrieval keyed on it,
  accumulating evidence, until the model writes "the answer is" or `max_steps`; then a grounded answer;
- `chain` (CoRAG, Wang et al. 2025): write a sub-query, retrieve, write a sub-answer, repeat until the model says
  DONE or `max_steps`; the final answer sees the chain and the accumulated passages.

Every mode returns a `ModeResult` whose `trace` lists each step (kind, query, passages, tokens, seconds), so cost
is measured, not assumed. The final-answer generation is the one called with `final=True`.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from indexers.errors import ConfigError, positive_int
from indexers.types import Hit
from rag.trace import ChainStep, GenerateStep, RetrieveStep, Step, StopStep, trace_dicts
from rag.prompts import (
    chain_final_messages,
    closed_book_messages,
    grounded_messages,
    ircot_messages,
    parse_citations,
    subquery_messages,
)

__all__ = ["BATCHED_MODES", "MODE_NAMES", "Mode", "ModeContext", "ModeResult", "chain", "iterative", "none",
           "one_shot", "run_mode", "run_mode_batch"]

Mode = Literal["none", "one_shot", "iterative", "chain"]


class _Generation(Protocol):
    text: str
    n_prompt_tokens: int
    n_new_tokens: int


GenerateFn = Callable[..., _Generation]
"""(messages, max_new_tokens, *, final: bool) -> Generation (rag.generator.Generation)."""


@dataclass(frozen=True)
class ModeContext:
    """What a mode may call, and its limits. `retrieve(query)` returns the passages to use for that query."""

    retrieve: Callable[[str], list[Hit]]
    generate: GenerateFn
    max_steps: int = 3  # iterative / chain: most retrieval rounds
    step_tokens: int = 32  # intermediate generations (a thought, a sub-query, a sub-answer)
    answer_tokens: int = 48  # the final answer
    max_passages: int = 6  # evidence kept in the final prompt (accumulating modes), best first
    should_stop: Callable[[str, str], bool] | None = None  # iterative: (question, draft) -> stop retrieving now
    generate_batch: Callable[[list[Any], int], Sequence[_Generation]] | None = None  # final answers, batched
    deadline: float | None = None  # time.perf_counter() after which iterative / chain start no new round

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.perf_counter() >= self.deadline

    def __post_init__(self) -> None:
        for name in ("max_steps", "step_tokens", "answer_tokens", "max_passages"):
            v = getattr(self, name)
            positive_int(v, f"ModeContext.{name}")
        if self.should_stop is not None and not callable(self.should_stop):
            raise ConfigError("ModeContext.should_stop must be a function (question, draft) -> bool, or None")
        if self.generate_batch is not None and not callable(self.generate_batch):
            raise ConfigError("ModeContext.generate_batch must be a function (prompts, max_new_tokens) -> "
                              "generations, or None")

    @classmethod
    def from_rag(cls, rag: Any, *, k: int = 4, store: str | None = None, batch_size: int = 0,
                 **limits: Any) -> ModeContext:
        """Bind to an opened `rag.RAG`: `RAG.evidence` when the SDK has it, else the retriever's top `k`.
        `batch_size` > 0 lets `run_mode_batch` decode final answers of several questions together."""
        evidence = getattr(rag, "evidence", None)
        if callable(evidence):
            def retrieve(query: str) -> list[Hit]:
                return evidence(query, k=k)
        else:
            def retrieve(query: str) -> list[Hit]:
                return rag.retriever.search(query, store, k)

        def generate(messages, max_new_tokens: int, *, final: bool = False):
            return rag.generator.generate(messages, max_new_tokens=max_new_tokens)

        batched = None
        if batch_size > 0:
            def batched(prompts: list[Any], max_new_tokens: int):
                return rag.generator.generate_batch(prompts, max_new_tokens, batch_size=batch_size)

        return cls(retrieve=retrieve, generate=generate, generate_batch=batched, **limits)


@dataclass(frozen=True)
class ModeResult:
    """One answered question: the answer (citation markers removed), the final raw text, the passages the final
    prompt used, and the steps taken. Token counts and retrieval calls are summed over `trace`."""

    mode: str
    question: str
    answer: str
    raw_text: str
    passages: list[Hit]
    trace: list[Step] = field(default_factory=list)
    retrieval_calls: int = 0
    n_prompt_tokens: int = 0
    n_new_tokens: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "question": self.question, "answer": self.answer, "raw_text": self.raw_text,
                "passages": [h.to_dict() for h in self.passages],
                "trace": trace_dicts(self.trace), "retrieval_calls": self.retrieval_calls,
                "n_prompt_tokens": self.n_prompt_tokens, "n_new_tokens": self.n_new_tokens, "seconds": self.seconds}


def _triples(hits: Sequence[Hit]) -> list[tuple[str, str, str]]:
    return [(h.id, h.title, h.text) for h in hits]


def _retrieve(ctx: ModeContext, query: str, trace: list[Step]) -> list[Hit]:
    t = time.perf_counter()
    hits = ctx.retrieve(query)
    trace.append(RetrieveStep(query, tuple(h.id for h in hits), time.perf_counter() - t))
    return hits


def _generate(ctx: ModeContext, kind: Literal["answer", "thought", "subquery", "subanswer"], messages,
              max_new_tokens: int, trace: list[Step], *, final: bool = False) -> str:
    t = time.perf_counter()
    out = ctx.generate(messages, max_new_tokens, final=final)
    trace.append(GenerateStep(kind, out.text, int(out.n_prompt_tokens), int(out.n_new_tokens),
                              time.perf_counter() - t))
    return out.text


def _merge(evidence: list[Hit], new: Sequence[Hit]) -> list[Hit]:
    """Accumulated evidence: earlier passages first, each id once (a new round adds only unseen passages)."""
    seen = {h.id for h in evidence}
    return evidence + [h for h in new if h.id not in seen and not seen.add(h.id)]


_ANSWER_IS = re.compile(r"answer is\s*:?\s*(.+)", re.IGNORECASE | re.DOTALL)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s|\n")


def _first_sentence(text: str) -> str:
    return _SENTENCE_END.split(text.strip(), maxsplit=1)[0].strip()


def _clean_answer(raw: str, passages: Sequence[Hit]) -> str:
    """The short answer: citation markers dropped; "... the answer is: X" reduced to X; one line."""
    text, _ = parse_citations(raw, [h.id for h in passages])
    m = _ANSWER_IS.search(text)
    if m:
        text = m.group(1)
    text = text.strip().splitlines()[0] if text.strip() else ""
    return text.strip().rstrip(".").strip()


def _result(mode: str, question: str, raw: str, passages: list[Hit], trace: list[Step],
            started: float) -> ModeResult:
    gens = [s for s in trace if isinstance(s, GenerateStep)]
    return ModeResult(
        mode=mode, question=question, answer=_clean_answer(raw, passages), raw_text=raw, passages=passages,
        trace=trace, retrieval_calls=sum(isinstance(s, RetrieveStep) for s in trace),
        n_prompt_tokens=sum(s.prompt_tokens for s in gens), n_new_tokens=sum(s.new_tokens for s in gens),
        seconds=time.perf_counter() - started)


def none(question: str, ctx: ModeContext) -> ModeResult:
    """Closed book: no retrieval."""
    t, trace = time.perf_counter(), list[Step]()
    raw = _generate(ctx, "answer", closed_book_messages(question), ctx.answer_tokens, trace, final=True)
    return _result("none", question, raw, [], trace, t)


def one_shot(question: str, ctx: ModeContext) -> ModeResult:
    """Retrieve with the question, answer from those passages."""
    t, trace = time.perf_counter(), list[Step]()
    hits = _retrieve(ctx, question, trace)
    raw = _generate(ctx, "answer", grounded_messages(question, _triples(hits)), ctx.answer_tokens, trace, final=True)
    return _result("one_shot", question, raw, hits, trace, t)


def iterative(question: str, ctx: ModeContext) -> ModeResult:
    """IRCoT: retrieve with the question, then per step one reasoning sentence and a retrieval keyed on it;
    `ctx.should_stop(question, thoughts so far)` (a probe) may end the retrievals before the step limit."""
    t, trace = time.perf_counter(), list[Step]()
    evidence = _retrieve(ctx, question, trace)
    thoughts: list[str] = []
    for _ in range(ctx.max_steps - 1):
        if ctx.out_of_time():
            break
        text = _generate(ctx, "thought", ircot_messages(question, _triples(evidence[: ctx.max_passages]), thoughts),
                         ctx.step_tokens, trace)
        if _ANSWER_IS.search(text):
            thoughts.append(text.strip())
            break
        sentence = _first_sentence(text)
        if not sentence or sentence in thoughts:
            break
        thoughts.append(sentence)
        if ctx.should_stop is not None and ctx.should_stop(question, " ".join(thoughts)):
            trace.append(StopStep(" ".join(thoughts)))
            break
        evidence = _merge(evidence, _retrieve(ctx, sentence, trace))
    used = evidence[: ctx.max_passages]
    raw = _generate(ctx, "answer", grounded_messages(question, _triples(used)), ctx.answer_tokens, trace, final=True)
    return _result("iterative", question, raw, used, trace, t)


_DONE = re.compile(r"^\W*done\b", re.IGNORECASE)


def chain(question: str, ctx: ModeContext) -> ModeResult:
    """CoRAG: sub-query -> retrieve -> sub-answer, repeated until DONE or `max_steps`; answer on the chain."""
    t, trace = time.perf_counter(), list[Step]()
    links: list[tuple[str, str]] = []
    evidence: list[Hit] = []
    for _ in range(ctx.max_steps):
        if links and ctx.out_of_time():  # the first round always runs: an answer needs some evidence
            break
        text = _generate(ctx, "subquery", subquery_messages(question, links), ctx.step_tokens, trace)
        subquery = text.strip().splitlines()[0].strip() if text.strip() else ""
        if _DONE.match(subquery) and not links:  # nothing found yet: the first sub-query is the question
            subquery = question
        if not subquery or _DONE.match(subquery) or subquery in {q for q, _ in links}:
            break
        hits = _retrieve(ctx, subquery, trace)
        sub = _generate(ctx, "subanswer", grounded_messages(subquery, _triples(hits)), ctx.step_tokens, trace)
        links.append((subquery, _clean_answer(sub, hits)))
        evidence = _merge(evidence, hits)
    used = evidence[: ctx.max_passages]
    raw = _generate(ctx, "answer", chain_final_messages(question, links, _triples(used)), ctx.answer_tokens, trace,
                    final=True)
    res = _result("chain", question, raw, used, trace, t)
    trace.append(ChainStep(tuple(links)))
    return res


MODES: dict[str, Callable[[str, ModeContext], ModeResult]] = {
    "none": none, "one_shot": one_shot, "iterative": iterative, "chain": chain}
MODE_NAMES: tuple[str, ...] = tuple(MODES)


def run_mode(name: str, question: str, ctx: ModeContext) -> ModeResult:
    """Answer `question` with the named search mode."""
    fn = MODES.get(name)
    if fn is None:
        raise ConfigError(f"unknown search mode {name!r}: use one of {', '.join(MODES)}")
    if not isinstance(question, str) or not question.strip():
        raise ConfigError("question is empty: pass the question text")
    return fn(question, ctx)


BATCHED_MODES: tuple[str, ...] = ("none", "one_shot")
"""Modes whose one generation is the final answer, so questions batch; iterative/chain decide each next step
from the previous generation, so they stay per question."""


def run_mode_batch(name: str, questions: Sequence[str], ctx: ModeContext) -> list[ModeResult]:
    """`run_mode` over several questions; `none`/`one_shot` decode their answers together when
    `ctx.generate_batch` is set (same ModeResults; each answer step's seconds is its share of the batch)."""
    if name not in BATCHED_MODES or ctx.generate_batch is None:
        return [run_mode(name, q, ctx) for q in questions]
    if any(not isinstance(q, str) or not q.strip() for q in questions):
        raise ConfigError("a question is empty: pass the question texts")
    traces: list[list[Step]] = [[] for _ in questions]
    hits: list[list[Hit]] = [[] for _ in questions]
    prompts = []
    for i, q in enumerate(questions):
        if name == "none":
            prompts.append(closed_book_messages(q))
        else:
            hits[i] = _retrieve(ctx, q, traces[i])
            prompts.append(grounded_messages(q, _triples(hits[i])))
    t = time.perf_counter()
    outs = list(ctx.generate_batch(prompts, ctx.answer_tokens))
    if len(outs) != len(prompts):
        raise ConfigError(f"generate_batch returned {len(outs)} generations for {len(prompts)} prompts")
    share = (time.perf_counter() - t) / max(1, len(prompts))
    results = []
    for i, (q, out) in enumerate(zip(questions, outs)):
        traces[i].append(GenerateStep("answer", out.text, int(out.n_prompt_tokens), int(out.n_new_tokens), share))
        r = _result(name, q, out.text, hits[i], traces[i], t)
        results.append(replace(r, seconds=sum(s.seconds for s in traces[i])))  # its retrieval + its share
    return results
