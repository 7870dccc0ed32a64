"""Grounded-answer prompts with numbered passages, and parsing of the [n] citations the model writes back.

Prompts are kept short on purpose: on a small CPU the prefill of the prompt dominates answer latency.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from indexers.types import passage_text

__all__ = [
    "CLOSED_BOOK_PROMPT",
    "EXAMPLE_ANSWER",
    "EXAMPLE_USER",
    "SYSTEM_PROMPT",
    "chain_final_messages",
    "closed_book_messages",
    "format_passages",
    "grounded_messages",
    "ircot_messages",
    "parse_citations",
    "probe_messages",
    "subquery_messages",
]

SYSTEM_PROMPT = (
    "Answer using only the numbered passages: a few words, then the passage number in brackets. "
    "If they do not say, reply: I don't know."
)
# One worked exchange before the real question: without it Qwen2.5-0.5B often answers with only "[2]" or with no
# citation at all; with it, 5/5 tuning probes gave "<answer> [n]" or "I don't know." (~40 extra prompt tokens).
EXAMPLE_USER = (
    "[1] Moon: The Moon is Earth's only natural satellite.\n"
    "[2] Mars: Mars has two small moons, Phobos and Deimos.\n\n"
    "Question: How many moons does Mars have?"
)
EXAMPLE_ANSWER = "Two [2]"

# A citation marker: [1], [1, 3], [2][3] (each bracket matched separately). Numbers of up to 3 digits only,
# so a bracketed year such as [1889] stays part of the answer.
_MARKER = re.compile(r"\s*\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")


def format_passages(passages: Sequence[tuple[str, str, str]]) -> str:
    """`[1] Title: text` lines (indexers.types.passage_text), numbered from 1 in the given order."""
    lines = []
    for i, passage in enumerate(passages, start=1):
        if len(passage) != 3:
            raise ValueError(
                f"passage {i} must be (passage_id, title, text), got {len(passage)} fields"
            )
        _, title, text = passage
        lines.append(f"[{i}] {passage_text(title, text)}")
    return "\n".join(lines)


def grounded_messages(
    question: str, passages: Sequence[tuple[str, str, str]]
) -> list[dict[str, str]]:
    """Chat messages (system, one worked example, the question) asking for a short answer citing its passages."""
    if not question.strip():
        raise ValueError("question is empty")
    listing = format_passages(passages) if passages else "(no passages)"
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": EXAMPLE_USER},
        {"role": "assistant", "content": EXAMPLE_ANSWER},
        {"role": "user", "content": f"{listing}\n\nQuestion: {question.strip()}"},
    ]


def parse_citations(answer: str, passage_ids: Sequence[str]) -> tuple[str, list[str]]:
    """(answer without citation markers, cited passage ids in first-cited order, no repeats).

    Marker numbers are 1-based positions in `passage_ids`; numbers outside 1..len(passage_ids) are dropped from the
    text but not cited.
    """
    cited: list[str] = []
    for match in _MARKER.finditer(answer):
        for number in re.split(r"\s*[,;]\s*", match.group(1)):
            n = int(number)
            if 1 <= n <= len(passage_ids) and passage_ids[n - 1] not in cited:
                cited.append(passage_ids[n - 1])
    text = _MARKER.sub("", answer)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return " ".join(text.split()), cited


CLOSED_BOOK_PROMPT = "Answer the question from your own knowledge with a few words only. No explanation."


def closed_book_messages(question: str) -> list[dict[str, str]]:
    """The `none` search mode: the model answers alone, in a few words (one worked example keeps it short)."""
    if not question.strip():
        raise ValueError("question is empty")
    return [
        {"role": "system", "content": CLOSED_BOOK_PROMPT},
        {"role": "user", "content": "Question: What is the capital of France?"},
        {"role": "assistant", "content": "Paris"},
        {"role": "user", "content": f"Question: {question.strip()}"},
    ]


PROBE_CHECK = "Is that answer correct? Reply yes or no."


def probe_messages(question: str, draft: str = "") -> list[dict[str, str]]:
    """What a probe (rag.control.probe) reads: the closed-book prompt, plus the draft answer and a check when one is given."""
    msgs = closed_book_messages(question)
    if draft.strip():
        msgs += [{"role": "assistant", "content": draft.strip()}, {"role": "user", "content": PROBE_CHECK}]
    return msgs


IRCOT_PROMPT = (
    "Think step by step using the passages. Write only the next sentence of reasoning. "
    "When you know the answer, write: So the answer is: <answer>."
)


def ircot_messages(
    question: str, passages: Sequence[tuple[str, str, str]], thoughts: Sequence[str]
) -> list[dict[str, str]]:
    """IRCoT step (Trivedi et al. 2023): the passages so far, the reasoning so far, ask for one more sentence."""
    if not question.strip():
        raise ValueError("question is empty")
    listing = format_passages(passages) if passages else "(no passages)"
    so_far = " ".join(t.strip() for t in thoughts) or "(none yet)"
    return [
        {"role": "system", "content": IRCOT_PROMPT},
        {"role": "user", "content": f"{listing}\n\nQuestion: {question.strip()}\nReasoning so far: {so_far}"},
    ]


SUBQUERY_PROMPT = (
    "Break the question into simple search queries, one at a time. Write only the next search query. "
    "If the facts found already answer the question, write only: DONE"
)


def subquery_messages(question: str, chain: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """CoRAG step (Wang et al. 2025): given the (sub-query, sub-answer) chain so far, ask for the next sub-query."""
    if not question.strip():
        raise ValueError("question is empty")
    facts = "\n".join(f"- {q} -> {a}" for q, a in chain) or "(none yet)"
    return [
        {"role": "system", "content": SUBQUERY_PROMPT},
        {"role": "user", "content": f"Question: {question.strip()}\nFacts found:\n{facts}"},
    ]


def chain_final_messages(
    question: str, chain: Sequence[tuple[str, str]], passages: Sequence[tuple[str, str, str]]
) -> list[dict[str, str]]:
    """The grounded-answer prompt with the CoRAG chain's sub-answers listed before the question."""
    messages = grounded_messages(question, passages)
    if chain:
        facts = "\n".join(f"- {q} -> {a}" for q, a in chain)
        last = messages[-1]
        listing, _, asked = last["content"].rpartition("\n\nQuestion: ")
        messages[-1] = {"role": "user", "content": f"{listing}\n\nFacts found:\n{facts}\n\nQuestion: {asked}"}
    return messages
