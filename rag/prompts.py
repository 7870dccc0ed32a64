"""Grounded-answer prompts with numbered passages, and parsing of the [n] citations the model writes back.

Prompts are kept short on purpose: on a small CPU the prefill of the prompt dominates answer latency.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "EXAMPLE_ANSWER",
    "EXAMPLE_USER",
    "SYSTEM_PROMPT",
    "format_passages",
    "grounded_messages",
    "parse_citations",
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
    """`[1] Title: text` lines, numbered from 1 in the given order."""
    lines = []
    for i, passage in enumerate(passages, start=1):
        if len(passage) != 3:
            raise ValueError(
                f"passage {i} must be (passage_id, title, text), got {len(passage)} fields"
            )
        _, title, text = passage
        text = " ".join(text.split())
        lines.append(
            f"[{i}] {title.strip()}: {text}" if title.strip() else f"[{i}] {text}"
        )
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
