"""Grounded prompts and citation parsing."""

from __future__ import annotations

import pytest

from rag.prompts import SYSTEM_PROMPT, grounded_messages, parse_citations

IDS = ["d7", "d3", "d9"]


def test_grounded_messages_number_the_passages() -> None:
    passages = [
        ("d7", "Eiffel Tower", "The tower was   completed in 1889."),
        ("d3", "", "Untitled text."),
    ]
    messages = grounded_messages("When was the Eiffel Tower completed?", passages)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == SYSTEM_PROMPT
    assert parse_citations(messages[2]["content"], ["x", "y"]) == (
        "Two",
        ["y"],
    )  # the example cites correctly
    user = messages[-1]["content"]
    assert (
        "[1] Eiffel Tower: The tower was completed in 1889.\n[2] Untitled text." in user
    )
    assert user.endswith("Question: When was the Eiffel Tower completed?")
    with pytest.raises(ValueError):
        grounded_messages("  ", passages)
    with pytest.raises(ValueError, match="passage 1"):
        grounded_messages("q?", [("d1", "only two")])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("answer", "text", "cited"),
    [
        ("Paris [1]", "Paris", ["d7"]),
        ("Paris [1].", "Paris.", ["d7"]),
        ("Paris [2][1] and Lyon [2]", "Paris and Lyon", ["d3", "d7"]),
        ("Both [1, 3].", "Both.", ["d7", "d9"]),
        ("Out of range [4] and [0] ignored [3]", "Out of range and ignored", ["d9"]),
        ("No citation at all.", "No citation at all.", []),
        (
            "Completed in [1889] [1]",
            "Completed in [1889]",
            ["d7"],
        ),  # a bracketed year is not a citation
        ("", "", []),
    ],
)
def test_parse_citations(answer: str, text: str, cited: list[str]) -> None:
    assert parse_citations(answer, IDS) == (text, cited)


def test_parse_citations_without_passages() -> None:
    assert parse_citations("I don't know [1]", []) == ("I don't know", [])
