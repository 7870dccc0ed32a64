"""Read QA sets (KILT JSONL, HotpotQA/2Wiki/MuSiQue JSON, plain JSONL) into `QAExample`s, and turn a QA set's
context paragraphs into an adarag corpus (the distractor setting, when no separate corpus exists).

Formats, told apart per record by their keys:
- `kilt`: {"id", "input", "output": [{"answer", "provenance": [{"wikipedia_id", "title", "start_paragraph_id",
  "end_paragraph_id"}]}]}; pages are the provenance titles (else wikipedia ids), supporting ids `WIKIID_PARA`.
- `hotpotqa` (also 2WikiMultihopQA): {"_id", "question", "answer", "supporting_facts": [[title, sent]],
  "context": [[title, [sentences]]]}; one document per context paragraph.
- `musique`: {"id", "question", "answer", "answer_aliases", "paragraphs": [{"title", "paragraph_text",
  "is_supporting"}]}.
- `jsonl`: {"id", "question", "answers": [...] (or "answer"), optional "supporting_ids", "provenance_pages",
  "context_ids"}: plain QA and the shared HotpotQA qa.jsonl layout.
Files are `.jsonl` (one record per line) or `.json` (one array of records, or one record).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from indexers.errors import ConfigError, CorpusError
from indexers.types import Document

__all__ = [
    "FORMATS",
    "QAExample",
    "QAFormat",
    "context_documents",
    "load_qa",
    "paragraph_id",
    "write_context_corpus",
]

QAFormat = Literal["auto", "kilt", "hotpotqa", "musique", "jsonl"]


@dataclass(frozen=True)
class QAExample:
    """One question with its gold answers (aliases included) and provenance.

    `supporting_ids` are corpus document (or passage) ids of the evidence; `provenance_pages` are page keys
    (Wikipedia titles or ids) for page-level R-precision; `context` holds the example's own paragraphs when the
    file carries them, `context_ids` their ids when it only references a corpus.
    """

    id: str
    question: str
    answers: tuple[str, ...]
    supporting_ids: tuple[str, ...] = ()
    provenance_pages: tuple[str, ...] = ()
    context_ids: tuple[str, ...] = ()
    context: tuple[Document, ...] = ()
    dataset: str = ""  # the QA set it comes from, in a mix (eval.mixed); reports break metrics down by it


def paragraph_id(title: str, text: str) -> str:
    """A stable corpus id for a context paragraph: its title plus a short hash of title and text.

    The hash keeps two paragraphs of one title apart (MuSiQue) and makes ids independent of file order.
    """
    digest = hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()[:8]
    slug = "_".join(title.replace("#", " ").split())[:80] or "para"
    return f"{slug}~{digest}"


def _str(rec: dict, key: str, where: str, *, required: bool = True) -> str:
    v = rec.get(key)
    if v is None and not required:
        return ""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = str(v)
    if not isinstance(v, str) or (required and not v.strip()):
        raise CorpusError(f"{where}: {key!r} must be a non-empty string, got {v!r}: fix or remove the record")
    return v


def _str_list(v: Any, key: str, where: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, str):
        return (v,)
    if not isinstance(v, list) or not all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in v):
        raise CorpusError(f"{where}: {key!r} must be a list of strings, got {v!r}")
    return tuple(str(x) for x in v)


def _answers(rec: dict, where: str) -> tuple[str, ...]:
    answers = _str_list(rec.get("answers"), "answers", where) + _str_list(rec.get("answer"), "answer", where)
    answers += _str_list(rec.get("answer_aliases"), "answer_aliases", where)
    answers = tuple(dict.fromkeys(a for a in answers if a.strip()))
    if not answers:
        raise CorpusError(f"{where}: record has no gold answer: add \"answers\": [\"...\"] (or \"answer\")")
    return answers


def _from_kilt(rec: dict, where: str) -> QAExample:
    outputs = rec.get("output")
    if not isinstance(outputs, list):
        raise CorpusError(f"{where}: KILT \"output\" must be a list of {{\"answer\", \"provenance\"}} objects")
    answers: list[str] = []
    pages: list[str] = []
    support: list[str] = []
    for out in outputs:
        if not isinstance(out, dict):
            raise CorpusError(f"{where}: each KILT output must be an object, got {out!r}")
        if isinstance(out.get("answer"), str) and out["answer"].strip():
            answers.append(out["answer"])
        for prov in out.get("provenance") or []:
            if not isinstance(prov, dict) or "wikipedia_id" not in prov:
                raise CorpusError(f"{where}: each KILT provenance needs a \"wikipedia_id\", got {prov!r}")
            wid = str(prov["wikipedia_id"])
            pages.append(str(prov.get("title") or wid))
            start = prov.get("start_paragraph_id")
            end = prov.get("end_paragraph_id", start)
            if isinstance(start, int) and isinstance(end, int):
                support.extend(f"{wid}_{p}" for p in range(start, end + 1))
    if not answers:
        raise CorpusError(f"{where}: KILT record has no output with an \"answer\": it cannot be scored")
    return QAExample(_str(rec, "id", where), _str(rec, "input", where), tuple(dict.fromkeys(answers)),
                     tuple(dict.fromkeys(support)), tuple(dict.fromkeys(pages)))


def _from_hotpot(rec: dict, where: str) -> QAExample:
    context = rec.get("context")
    docs: list[Document] = []
    by_title: dict[str, str] = {}
    for para in context if isinstance(context, list) else [None]:
        if not (isinstance(para, list) and len(para) == 2 and isinstance(para[0], str)
                and isinstance(para[1], list) and all(isinstance(s, str) for s in para[1])):
            raise CorpusError(f"{where}: \"context\" must be a list of [title, [sentence, ...]] pairs, got {para!r}")
        text = "".join(para[1]).strip()
        did = paragraph_id(para[0], text)
        by_title.setdefault(para[0], did)
        docs.append(Document(id=did, title=para[0], text=text))
    pages: list[str] = []
    for fact in rec.get("supporting_facts") or []:
        if not (isinstance(fact, list) and fact and isinstance(fact[0], str)):
            raise CorpusError(f"{where}: \"supporting_facts\" must be [title, sentence_id] pairs, got {fact!r}")
        if fact[0] not in by_title:
            raise CorpusError(f"{where}: supporting fact title {fact[0]!r} is not among the context paragraphs")
        pages.append(fact[0])
    pages = list(dict.fromkeys(pages))
    qid = _str(rec, "_id", where) if "_id" in rec else _str(rec, "id", where)
    return QAExample(qid, _str(rec, "question", where), _answers(rec, where),
                     tuple(by_title[p] for p in pages), tuple(pages), tuple(d.id for d in docs), tuple(docs))


def _from_musique(rec: dict, where: str) -> QAExample:
    docs: list[Document] = []
    support: list[str] = []
    paragraphs = rec.get("paragraphs")
    for para in paragraphs if isinstance(paragraphs, list) else [None]:
        if not (isinstance(para, dict) and isinstance(para.get("paragraph_text"), str)):
            raise CorpusError(f"{where}: \"paragraphs\" must be objects with \"title\" and \"paragraph_text\", got {para!r}")
        title = str(para.get("title") or "")
        doc = Document(id=paragraph_id(title, para["paragraph_text"].strip()), title=title,
                       text=para["paragraph_text"].strip())
        docs.append(doc)
        if para.get("is_supporting"):
            support.append(doc.id)
    pages = tuple(dict.fromkeys(d.title for d in docs if d.id in support and d.title))
    return QAExample(_str(rec, "id", where), _str(rec, "question", where), _answers(rec, where),
                     tuple(dict.fromkeys(support)), pages, tuple(d.id for d in docs), tuple(docs))


def _from_jsonl(rec: dict, where: str) -> QAExample:
    dataset = rec.get("dataset", "")
    if not isinstance(dataset, str):
        raise CorpusError(f"{where}: \"dataset\" must be a string (the QA set's name), got {dataset!r}")
    return QAExample(_str(rec, "id", where), _str(rec, "question", where), _answers(rec, where),
                     _str_list(rec.get("supporting_ids"), "supporting_ids", where),
                     _str_list(rec.get("provenance_pages"), "provenance_pages", where),
                     _str_list(rec.get("context_ids"), "context_ids", where), dataset=dataset)


FORMATS: dict[str, Callable[[dict, str], QAExample]] = {
    "kilt": _from_kilt, "hotpotqa": _from_hotpot, "musique": _from_musique, "jsonl": _from_jsonl,
}


def _sniff(rec: dict, where: str) -> str:
    if "input" in rec and "output" in rec:
        return "kilt"
    if "context" in rec and "question" in rec:
        return "hotpotqa"
    if "paragraphs" in rec and "question" in rec:
        return "musique"
    if "question" in rec:
        return "jsonl"
    raise CorpusError(
        f"{where}: cannot tell the QA format from keys {sorted(rec)}: expected KILT (input, output), "
        "HotpotQA/2Wiki (question, answer, context), MuSiQue (question, answer, paragraphs) or JSONL (question, answers)"
    )


def _records(path: Path) -> Iterable[tuple[Any, str]]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CorpusError(f"cannot read QA file {str(path)!r} ({e.strerror}): check the path") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise CorpusError(f"{path}:{line}: invalid UTF-8 (byte 0x{raw[e.start]:02x}): re-encode the file as UTF-8") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path}:{e.lineno}: malformed JSON ({e.msg} at column {e.colno})") from None
        data = data if isinstance(data, list) else [data]
        yield from ((rec, f"{path}: record {i}") for i, rec in enumerate(data))
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path}:{lineno}: malformed JSON ({e.msg} at column {e.colno}): each line must be one "
                              "JSON object; fix or remove the line") from None
        yield rec, f"{path}:{lineno}"


def load_qa(path: str | Path, *, format: QAFormat = "auto", limit: int | None = None) -> list[QAExample]:
    """Read a QA file into examples, in file order; ids must be unique. `limit` keeps the first N."""
    if format != "auto" and format not in FORMATS:
        raise ConfigError(f"unknown QA format {format!r}: use auto or one of {', '.join(FORMATS)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit must be a positive integer or None, got {limit!r}")
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"QA file {str(path)!r} does not exist: check the spelling and working directory")
    out: list[QAExample] = []
    seen: dict[str, str] = {}
    for rec, where in _records(path):
        if limit is not None and len(out) >= limit:
            break
        if not isinstance(rec, dict):
            raise CorpusError(f"{where}: expected a JSON object, got a JSON {type(rec).__name__}")
        ex = FORMATS[_sniff(rec, where) if format == "auto" else format](rec, where)
        if ex.id in seen:
            raise CorpusError(f"{where}: duplicate question id {ex.id!r} (first at {seen[ex.id]}): ids must be unique")
        seen[ex.id] = where
        out.append(ex)
    if not out:
        raise CorpusError(f"{path}: no QA records found: give a KILT, HotpotQA, MuSiQue or JSONL QA file")
    return out


def context_documents(examples: Sequence[QAExample],
                      corpus: Mapping[str, Document] | None = None) -> list[Document]:
    """The distinct context paragraphs of `examples`, in first-seen order. Examples that only reference ids
    (`context_ids`, the shared layout) take their documents from `corpus`."""
    docs: dict[str, Document] = {}
    for ex in examples:
        own = ex.context
        if not own and ex.context_ids:
            if corpus is None:
                raise ConfigError(f"example {ex.id!r} lists context_ids but no paragraphs: pass corpus=")
            missing = [i for i in ex.context_ids if i not in corpus]
            if missing:
                raise CorpusError(f"example {ex.id!r}: context ids {missing[:5]} are not in the given corpus")
            own = tuple(corpus[i] for i in ex.context_ids)
        for d in own:
            prev = docs.get(d.id)
            if prev is not None and (prev.text, prev.title) != (d.text, d.title):
                raise CorpusError(f"example {ex.id!r}: paragraph id {d.id!r} appears with two different texts")
            docs.setdefault(d.id, d)
    if not docs:
        raise CorpusError("the QA examples carry no context paragraphs: index a separate corpus instead")
    return list(docs.values())


def write_context_corpus(examples: Sequence[QAExample], out: str | Path,
                         corpus: Mapping[str, Document] | None = None) -> int:
    """Write the examples' context paragraphs as an adarag corpus JSONL (id, title, text); returns the count."""
    docs = context_documents(examples, corpus)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"id": d.id, "title": d.title, "text": d.text}, ensure_ascii=False) + "\n" for d in docs)
    return len(docs)
