"""Grounded-answer prompts with numbered passages, and parsing of the [n] citations the model writes back.

Prompts are kept short on purpose: on a small CPU the prefill of the prompt dominates answer latency.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["SYSTEM_PROMPT", "grounded_messages", "format_passages", "parse_citations"]

SYSTEM_PROMPT = (
    "Answer the question using only the numbered passages. "
    "Reply with a short answer (a few words), then the number of the passage you used in brackets, like [1]. "
    "If the passages do not contain the answer, reply: I don't know."
)

# A citation marker: [1], [1, 3], [2][3] (each bracket matched separately). Numbers of up to 3 digits only,
# so a bracketed year such as [1889] stays part of the answer.
_MARKER = re.compile(r"\s*\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")


def format_passages(passages: Sequence[tuple[str, str, str]]) -> str:
    """`[1] Title: text` lines, numbered from 1 in the given order."""
    lines = []
    for i, passage in enumerate(passages, start=1):
        if len(passage) != 3:
            raise ValueError(f"passage {i} must be (passage_id, title, text), got {len(passage)} fields")
        _, title, text = passage
        text = " ".join(text.split())
        lines.append(f"[{i}] {title.strip()}: {text}" if title.strip() else f"[{i}] {text}")
    return "\n".join(lines)


def grounded_messages(question: str, passages: Sequence[tuple[str, str, str]]) -> list[dict[str, str]]:
    """System + user chat messages asking for a short answer to `question` that cites the passages it used."""
    if not question.strip():
        raise ValueError("question is empty")
    user = f"{format_passages(passages)}\n\nQuestion: {question.strip()}" if passages else (
        f"(no passages)\n\nQuestion: {question.strip()}")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


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
