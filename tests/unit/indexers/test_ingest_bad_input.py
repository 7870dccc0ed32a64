"""indexers/ingest.py on hostile input (issue #16): ids that would poison the index, and JSONL lines that
used to end in a RecursionError or Python's own int-limit message. Each error is a CorpusError that names
the place and the fix."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexers.errors import CorpusError
from indexers.index import BuildParams, build_index
from indexers.ingest import check_doc_id, check_document, read_corpus
from indexers.types import Document


@pytest.mark.parametrize("doc_id, words", [
    ("", "empty"),
    ("   ", "empty"),
    ("a\x00b", "control character '\\x00' at position 1"),
    ("tab\there", "control character '\\t'"),
    ("line\nbreak", "control character '\\n'"),
    ("del\x7f", "control character '\\x7f'"),
    ("esc\x1b[0m", "control character '\\x1b'"),
    ("half\ud800", "unpaired surrogate"),
    ("a#1", "reserved for passage ids"),
    (7, "must be a string"),
])
def test_unusable_ids_are_refused_with_the_fix(doc_id, words):
    with pytest.raises(CorpusError, match="document id") as e:
        check_doc_id(doc_id, "in.jsonl:3")
    msg = str(e.value)
    assert msg.startswith("in.jsonl:3: ") and words in msg
    msg.encode("utf-8")  # printable as is: the bad character is shown escaped
    with pytest.raises(CorpusError, match="document id"):
        check_document(Document(id=doc_id, text="some text"))


@pytest.mark.parametrize("doc_id", ["d1", "Émile Zola", "path/to/doc", "x-y_z.1", "日本語", "a b", "😀"])
def test_ordinary_ids_pass(doc_id):
    assert check_doc_id(doc_id) == doc_id


def test_a_nul_id_in_a_jsonl_corpus_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "c.jsonl"
    f.write_text(json.dumps({"id": "ok", "text": "fine"}) + "\n" + json.dumps({"id": "x\x00", "text": "t"}) + "\n")
    with pytest.raises(CorpusError, match=r"c\.jsonl:2: document id 'x\\x00' contains the control character"):
        list(read_corpus(f))


def test_a_nul_id_never_reaches_the_index(tmp_path: Path) -> None:
    """The probe's repro: ids.npy stripped the NUL, so every search ranking that document failed."""
    out = tmp_path / "ix"
    docs = [Document(id="x", text="an ordinary document"), Document(id="x\x00", text="the poisoned one")]
    with pytest.raises(CorpusError, match="control character"):
        build_index(docs, out, BuildParams(stores=("bm25",)), progress=False)
    assert not out.exists()


@pytest.mark.parametrize("line, words", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),  # was a RecursionError traceback
    ('{"id": "a", "text": "t", "metadata": ' + '{"k": ' * 100_000 + "1" + "}" * 100_001, "nested too deeply"),
    ('{"id": "a", "text": "t", "n": ' + "1" * 5_000 + "}", "more than 4,300 digits"),  # was Python's message
    ('{"id": ' + "9" * 5_000 + ', "text": "t"}', "JSON string"),
], ids=["deep-array", "deep-metadata", "long-int", "long-int-id"])
def test_unreadable_json_lines_name_file_line_and_fix(tmp_path: Path, line: str, words: str) -> None:
    f = tmp_path / "c.jsonl"
    f.write_text('{"id": "ok", "text": "fine"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(CorpusError) as e:
        list(read_corpus(f))
    msg = str(e.value)
    assert msg.startswith(f"{f}:2: ") and words in msg and ("flatten" in msg or "JSON string" in msg)
    assert "set_int_max_str_digits" not in msg


def test_too_deep_metadata_given_in_python_is_a_corpus_error(tmp_path: Path) -> None:
    meta: dict = {}
    inner = meta
    for _ in range(100_000):
        inner["k"] = inner = {}
    with pytest.raises(CorpusError, match="nested too deeply"):
        build_index([Document(id="a", text="t", metadata=meta)], tmp_path / "ix", BuildParams(stores=("bm25",)),
                    progress=False)
