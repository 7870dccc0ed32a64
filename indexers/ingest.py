"""Read corpora (JSONL, BEIR corpus.jsonl, folders of .txt/.md) into Documents and split them into Passages.

Every corpus problem raises `CorpusError` naming the file, the 1-based line and the fix, because a
bad record found after an hour of indexing is far more expensive than one found while reading.
"""
from __future__ import annotations

import codecs
import gzip
import hashlib
import json
import logging
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexers.errors import ConfigError, CorpusError
from indexers.text import lone_surrogate
from indexers.types import Document, Passage

__all__ = [
    "SplitConfig",
    "read_corpus",
    "check_document",
    "check_doc_id",
    "split_passages",
    "doc_id_of",
    "passages_to_documents",
    "content_hash",
    "passage_hash",
    "corpus_fingerprint",
]

log = logging.getLogger(__name__)

_WORD = re.compile(r"\S+")
_MD_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_MD_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_RESERVED_KEYS = frozenset({"id", "_id", "title", "text", "metadata"})
_TEXT_SUFFIXES = (".txt", ".md", ".markdown")
_ICONV_HINT = "the file must be UTF-8: re-encode it, e.g. `iconv -f latin1 -t utf-8 '{path}' > fixed{suffix}`"


@dataclass(frozen=True)
class SplitConfig:
    """Word-window passage splitting: windows of `max_words` words, consecutive windows share >= `overlap` words."""

    max_words: int = 200
    overlap: int = 50

    def __post_init__(self) -> None:
        if isinstance(self.max_words, bool) or not isinstance(self.max_words, int) or self.max_words < 1:
            raise ConfigError(f"max_words must be an integer >= 1, got {self.max_words!r}")
        if isinstance(self.overlap, bool) or not isinstance(self.overlap, int) or self.overlap < 0:
            raise ConfigError(f"overlap must be an integer >= 0, got {self.overlap!r}")
        if self.overlap >= self.max_words:
            raise ConfigError(
                f"overlap ({self.overlap}) must be smaller than max_words ({self.max_words}): "
                "otherwise the window never advances"
            )


# --------------------------------------------------------------------------- reading


def read_corpus(paths: Sequence[str | Path] | str | Path) -> Iterator[Document]:
    """Yield the documents of every path in order; ids must be unique across all of them.

    A path is a `.jsonl`/`.jsonl.gz` file (keys `id` or BEIR `_id`, `text`, optional `title`; a `metadata`
    object and any other keys go to `Document.metadata`), a `.txt`/`.md` file, or a folder. A folder holding
    a top-level `corpus.jsonl` is a BEIR dataset and only that file is read (not queries.jsonl); any other
    folder is read recursively in sorted path order, hidden entries skipped. A text file's id is its path
    relative to the folder without suffix (its stem when given directly); a `.md` title is its first heading.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise CorpusError("read_corpus got no paths: give at least one JSONL file or folder")
    roots = [Path(p) for p in paths]
    for root in roots:
        if not root.exists():
            raise CorpusError(f"corpus path {str(root)!r} does not exist: check the spelling and working directory")
    seen: dict[str, str] = {}
    for root in roots:
        for file, base in _expand(root):
            for doc, where in _READERS[_suffix(file)](file, base):
                previous = seen.get(doc.id)
                if previous is not None:
                    raise CorpusError(
                        f"duplicate document id {doc.id!r}: first at {previous}, again at {where}; "
                        "ids must be unique across all inputs: rename or drop one of them"
                    )
                seen[doc.id] = where
                yield doc
    if not seen:
        listed = ", ".join(repr(str(r)) for r in roots)
        raise CorpusError(
            f"no documents found in {listed}: give JSONL files (.jsonl, .jsonl.gz, BEIR corpus.jsonl) "
            f"or folders of {'/'.join(_TEXT_SUFFIXES)} files"
        )


def check_document(doc: Document, where: str = "") -> None:
    """Raise `CorpusError` unless `doc` can be stored and split: a valid id (`check_doc_id`), str text/title."""
    at = f"{where}: " if where else ""
    if not isinstance(doc, Document):
        raise ConfigError(f"{at}expected an indexers.types.Document, got {type(doc).__name__}")
    check_doc_id(doc.id, where)
    for name in ("text", "title"):
        value = getattr(doc, name)
        if not isinstance(value, str):
            raise CorpusError(f"{at}document {doc.id!r}: {name} must be a string, got {type(value).__name__}")
        if "\x00" in value:
            raise CorpusError(
                f"{at}document {doc.id!r}: {name} contains a NUL character (\\x00), which PostgreSQL cannot store "
                "and which usually means binary data: strip it before indexing"
            )
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise CorpusError(
                f"{at}document {doc.id!r}: {name} has an unpaired surrogate at character {e.start} "
                "(a broken \\ud8xx escape?): fix the escape in the source"
            ) from None
    if not isinstance(doc.metadata, dict):
        raise CorpusError(f"{at}document {doc.id!r}: metadata must be a dict, got {type(doc.metadata).__name__}")


def check_doc_id(doc_id: object, where: str = "") -> str:
    """Raise `CorpusError` unless `doc_id` is a usable document id: a non-blank str with no '#' (it separates
    passage ids, DOCID#N), no control character (\\x00-\\x1f, \\x7f: NUL is stripped by ids.npy, tabs and
    newlines break TREC run files) and no unpaired surrogate."""
    at = f"{where}: " if where else ""
    if not isinstance(doc_id, str):
        raise CorpusError(f"{at}document id must be a string, got {type(doc_id).__name__} {doc_id!r}")
    if not doc_id.strip():
        raise CorpusError(f"{at}document id is empty: give every document a non-empty id")
    if "#" in doc_id:
        raise CorpusError(
            f"{at}document id {doc_id!r} contains '#', which is reserved for passage ids (DOCID#N): "
            "replace the '#' in the id"
        )
    bad = _CONTROL.search(doc_id)
    if bad is not None:
        raise CorpusError(
            f"{at}document id {doc_id!r} contains the control character {bad.group()!r} at position {bad.start()}: "
            "ids may not hold control characters (\\x00-\\x1f, \\x7f), which the index cannot store exactly; "
            "remove or replace it"
        )
    if lone_surrogate(doc_id):
        raise CorpusError(
            f"{at}document id {doc_id!r} has an unpaired surrogate (a broken \\ud8xx escape?), which cannot be "
            "stored as UTF-8: fix the escape in the source"
        )
    return doc_id


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".jsonl.gz" if name.endswith(".jsonl.gz") else path.suffix.lower()


def _expand(root: Path) -> Iterator[tuple[Path, Path]]:
    """Yield (file, base) pairs; text ids are relative to `base`."""
    if root.is_file():
        if _suffix(root) not in _READERS:
            raise CorpusError(
                f"{root}: unsupported file type {_suffix(root) or '(no suffix)'!r}: "
                f"supported are {', '.join(sorted(_READERS))}"
            )
        yield root, root.parent
        return
    for name in ("corpus.jsonl", "corpus.jsonl.gz"):
        if (root / name).is_file():
            yield root / name, root
            return
    files = sorted(
        (p for p in root.rglob("*") if p.is_file() and _suffix(p) in _READERS
         and not any(part.startswith(".") for part in p.relative_to(root).parts)),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not files:
        log.warning("no %s files in folder %s", ", ".join(sorted(_READERS)), root)
    for file in files:
        yield file, root


def _utf8_error(path: Path, line: int, offset: int, bad: int, column: int) -> CorpusError:
    hint = _ICONV_HINT.format(path=path, suffix="".join(path.suffixes[-1:]) or ".txt")
    return CorpusError(
        f"{path}:{line}: invalid UTF-8 byte 0x{bad:02x} at byte offset {offset} (line {line}, byte column {column}); {hint}"
    )


def _read_jsonl(path: Path, base: Path) -> Iterator[tuple[Document, str]]:
    opener: Callable[..., Any] = gzip.open if _suffix(path) == ".jsonl.gz" else open
    offset = 0
    try:
        with opener(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                line_offset, offset = offset, offset + len(raw)
                if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw, line_offset = raw[len(codecs.BOM_UTF8):], line_offset + len(codecs.BOM_UTF8)
                if not raw.strip():
                    continue
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise _utf8_error(path, lineno, line_offset + e.start, raw[e.start], e.start + 1) from None
                where = f"{path}:{lineno}"
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise CorpusError(
                        f"{where}: malformed JSON ({e.msg} at column {e.colno}): each line must be one JSON object "
                        "like {\"id\": \"d1\", \"title\": \"...\", \"text\": \"...\"}; fix or remove the line"
                    ) from None
                except RecursionError:
                    raise CorpusError(
                        f"{where}: JSON nested too deeply to read (over Python's recursion limit of "
                        f"{sys.getrecursionlimit():,} levels): a document is one flat object with a few nested "
                        "metadata values; flatten the line or remove it"
                    ) from None
                except ValueError:  # the only other json.loads failure: an integer over Python's digit limit
                    raise CorpusError(
                        f"{where}: a number has more than {sys.get_int_max_str_digits():,} digits, more than Python "
                        "reads: write it as a JSON string (\"12345...\") or remove it"
                    ) from None
                yield _record_to_document(record, where), where
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise CorpusError(f"{path}: not a readable gzip file ({e}): re-compress it or give the plain .jsonl") from None


def _record_to_document(record: object, where: str) -> Document:
    if not isinstance(record, dict):
        raise CorpusError(
            f"{where}: expected a JSON object like {{\"id\": ..., \"text\": ...}}, got a JSON {type(record).__name__}"
        )
    if "id" in record and "_id" in record and record["id"] != record["_id"]:
        raise CorpusError(f"{where}: record has both 'id' and '_id' and they differ: keep one of them")
    raw_id = record["id"] if "id" in record else record.get("_id")
    if raw_id is None or raw_id == "":
        raise CorpusError(f"{where}: record has no id: add a non-empty \"id\" (or BEIR \"_id\") field")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    if not isinstance(raw_id, str):
        raise CorpusError(f"{where}: id must be a string or an integer, got {type(raw_id).__name__} {raw_id!r}")
    if "text" not in record:
        raise CorpusError(f"{where}: record {raw_id!r} has no \"text\" field: add the document text")
    text = record["text"]
    if not isinstance(text, str):
        raise CorpusError(f"{where}: \"text\" of record {raw_id!r} must be a string, got {type(text).__name__}")
    title = record.get("title")
    title = "" if title is None else title
    if not isinstance(title, str):
        raise CorpusError(f"{where}: \"title\" of record {raw_id!r} must be a string, got {type(title).__name__}")
    metadata: dict[str, Any] = {}
    nested = record.get("metadata")
    if nested is not None:
        if not isinstance(nested, dict):
            raise CorpusError(f"{where}: \"metadata\" of record {raw_id!r} must be an object, got {type(nested).__name__}")
        metadata.update(nested)
    metadata.update((k, v) for k, v in record.items() if k not in _RESERVED_KEYS)
    doc = Document(id=raw_id, text=text, title=title, metadata=metadata)
    check_document(doc, where)
    return doc


def _read_text(path: Path, base: Path) -> Iterator[tuple[Document, str]]:
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line_start = data.rfind(b"\n", 0, e.start) + 1
        raise _utf8_error(path, data.count(b"\n", 0, e.start) + 1, e.start, data[e.start], e.start - line_start + 1) from None
    rel = path.relative_to(base)
    doc_id = rel.with_suffix("").as_posix()
    title = _markdown_title(text) if _suffix(path) != ".txt" else ""
    doc = Document(id=doc_id, text=text, title=title or path.stem)
    check_document(doc, str(path))
    yield doc, str(path)


def _markdown_title(text: str) -> str:
    """First ATX heading (`# Title`) outside fenced code blocks, or ''."""
    fenced = False
    for line in text.splitlines():
        if _MD_FENCE.match(line):
            fenced = not fenced
        elif not fenced and (m := _MD_HEADING.match(line)) and m.group(1).strip():
            return m.group(1).strip()
    return ""


_READERS: dict[str, Callable[[Path, Path], Iterator[tuple[Document, str]]]] = {
    ".jsonl": _read_jsonl,
    ".jsonl.gz": _read_jsonl,
    **{s: _read_text for s in _TEXT_SUFFIXES},
}


# --------------------------------------------------------------------------- splitting


def split_passages(doc: Document, max_words: int = 200, overlap: int = 50) -> list[Passage]:
    """Cut `doc` into windows of exactly `max_words` words, spread evenly, consecutive ones sharing at least
    `overlap` words, on whitespace boundaries.

    A document that fits keeps its id and whole text; otherwise passages are `DOCID#0`, `DOCID#1`, ... and
    `doc.text[p.start:p.end] == p.text`. There is no short tail window: BM25's length normalisation would give
    a long document's last few words a bonus over whole paragraphs (results/bm25-bar/README.md measures it).
    """
    SplitConfig(max_words, overlap)  # validates
    spans = [m.span() for m in _WORD.finditer(doc.text)]
    n = len(spans)
    if n <= max_words:
        return [Passage(id=doc.id, doc_id=doc.id, text=doc.text, title=doc.title, start=0, end=len(doc.text))]
    stride = max_words - overlap
    gaps = -(-(n - max_words) // stride)  # windows - 1: the fewest at which no gap between starts exceeds stride
    passages: list[Passage] = []
    for i in range(gaps + 1):
        first = i * (n - max_words) // gaps  # floor keeps starts strictly increasing (spacing >= 1)
        start, end = spans[first][0], spans[first + max_words - 1][1]
        passages.append(Passage(id=f"{doc.id}#{i}", doc_id=doc.id, text=doc.text[start:end],
                                title=doc.title, start=start, end=end))
    return passages


def doc_id_of(passage_id: str) -> str:
    """The document id of a passage id: `DOC#3` -> `DOC`; an unsplit passage id is the document id."""
    head, sep, tail = passage_id.rpartition("#")
    return head if sep and tail.isdigit() else passage_id


def passages_to_documents(hits: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Collapse a passage ranking to documents (MaxP): each doc keeps its best score; order is score desc,
    ties keep the order in which the docs first appear in `hits`."""
    best: dict[str, float] = {}
    for passage_id, score in hits:
        doc_id = doc_id_of(passage_id)
        if doc_id not in best or score > best[doc_id]:
            best[doc_id] = float(score)
    return sorted(best.items(), key=lambda item: -item[1])  # stable: ties keep first-seen order


# --------------------------------------------------------------------------- hashing


def _sha256(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def content_hash(doc: Document) -> str:
    """sha256 of title, text and canonical JSON metadata (NUL-separated); equal hashes mean nothing to re-embed."""
    try:
        meta = json.dumps(doc.metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise CorpusError(f"document {doc.id!r}: metadata is not JSON-serialisable ({e}): use plain JSON values") from None
    except RecursionError:
        raise CorpusError(f"document {doc.id!r}: metadata is nested too deeply to store: flatten it") from None
    return _sha256(doc.title, doc.text, meta)


def passage_hash(passage: Passage) -> str:
    """sha256 of a passage's doc id, title, text and offsets."""
    return _sha256(passage.doc_id, passage.title, passage.text, f"{passage.start}:{passage.end}")


def corpus_fingerprint(pairs: Iterable[tuple[str, str]]) -> str:
    """sha256 over (passage id, passage_hash) pairs in corpus order: names the exact passages an index was built on."""
    h = hashlib.sha256()
    for passage_id, digest in pairs:
        h.update(passage_id.encode("utf-8"))
        h.update(b"\x00")
        h.update(digest.encode("ascii"))
        h.update(b"\n")
    return h.hexdigest()
