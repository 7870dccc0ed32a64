"""indexers/ingest.py: corpus readers (formats + every error names file and line) and passage splitting."""
from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexers.errors import ConfigError, CorpusError
from indexers.ingest import (
    SplitConfig,
    check_document,
    content_hash,
    corpus_fingerprint,
    doc_id_of,
    passage_hash,
    passages_to_documents,
    read_corpus,
    split_passages,
)
from indexers.types import Document


def _jsonl(path: Path, *lines: object) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


def _error(paths: object) -> str:
    with pytest.raises(CorpusError) as info:
        list(read_corpus(paths))  # type: ignore[arg-type]
    return str(info.value)


# ----------------------------------------------------------------------------- formats


def test_jsonl_fields_and_extra_keys_go_to_metadata(tmp_path: Path) -> None:
    f = _jsonl(tmp_path / "c.jsonl",
               {"id": "a", "title": "T", "text": "hello", "lang": "en"},
               "",
               "   ",
               {"id": 7, "text": "seven", "metadata": {"k": 1}, "src": "x"})
    docs = list(read_corpus([f]))
    assert docs == [
        Document(id="a", text="hello", title="T", metadata={"lang": "en"}),
        Document(id="7", text="seven", title="", metadata={"k": 1, "src": "x"}),
    ]


def test_beir_corpus_and_beir_folder(tmp_path: Path) -> None:
    _jsonl(tmp_path / "corpus.jsonl", {"_id": "d1", "title": "One", "text": "first", "metadata": {"url": "u"}},
           {"_id": "d2", "title": "", "text": "second"})
    _jsonl(tmp_path / "queries.jsonl", {"_id": "q1", "text": "a query, not a document"})
    by_file = list(read_corpus([tmp_path / "corpus.jsonl"]))
    by_dir = list(read_corpus([tmp_path]))
    assert by_file == by_dir
    assert [(d.id, d.title, d.metadata) for d in by_dir] == [("d1", "One", {"url": "u"}), ("d2", "", {})]


def test_jsonl_gz_and_bom(tmp_path: Path) -> None:
    f = tmp_path / "c.jsonl.gz"
    with gzip.open(f, "wt", encoding="utf-8") as out:
        out.write('\ufeff{"id": "g", "text": "zipped"}\n')
    assert [d.id for d in read_corpus(f)] == ["g"]


def test_folder_of_text_files_is_recursive_sorted_with_titles(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "b.md").write_text("```\n# not a title\n```\n\n## Real Title ##\nbody", encoding="utf-8")
    (tmp_path / "a.txt").write_text("# plain text, not a heading\n", encoding="utf-8")
    (tmp_path / "sub" / "c.md").write_text("no heading here", encoding="utf-8")
    (tmp_path / ".git" / "x.txt").write_text("hidden", encoding="utf-8")
    (tmp_path / "ignored.csv").write_text("x", encoding="utf-8")
    docs = list(read_corpus([str(tmp_path)]))
    assert [(d.id, d.title) for d in docs] == [("a", "a"), ("b", "Real Title"), ("sub/c", "c")]
    assert docs[1].text.endswith("body")
    single = list(read_corpus([tmp_path / "sub" / "c.md"]))
    assert [(d.id, d.text) for d in single] == [("c", "no heading here")]


def test_several_inputs_in_order(tmp_path: Path) -> None:
    a = _jsonl(tmp_path / "a.jsonl", {"id": "x", "text": "1"})
    b = _jsonl(tmp_path / "b.jsonl", {"id": "y", "text": "2"})
    assert [d.id for d in read_corpus([b, a])] == ["y", "x"]


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ('{"id": "a", "text": ', "malformed JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"text": "no id"}', "no id"),
        ('{"id": "", "text": "empty id"}', "no id"),
        ('{"id": "   ", "text": "blank id"}', "id is empty"),
        ('{"id": 1.5, "text": "x"}', "string or an integer"),
        ('{"id": true, "text": "x"}', "string or an integer"),
        ('{"id": ["a"], "text": "x"}', "string or an integer"),
        ('{"id": "a"}', 'no "text" field'),
        ('{"id": "a", "text": 3}', "must be a string"),
        ('{"id": "a", "text": null}', "must be a string"),
        ('{"id": "a", "text": "x", "title": 5}', '"title"'),
        ('{"id": "a", "text": "x", "metadata": [1]}', '"metadata"'),
        ('{"id": "a#1", "text": "x"}', "reserved for passage ids"),
        ('{"id": "a", "_id": "b", "text": "x"}', "differ"),
        ('{"id": "a", "text": "nul \\u0000 here"}', "NUL"),
        ('{"id": "a", "text": "bad \\ud800 escape"}', "surrogate"),
    ],
)
def test_bad_record_names_file_and_line(tmp_path: Path, bad_line: str, expected: str) -> None:
    f = _jsonl(tmp_path / "corpus.jsonl", {"id": "ok", "text": "fine"}, "", bad_line)
    msg = _error([f])
    assert f"{f}:3" in msg
    assert expected in msg


def test_non_utf8_names_line_offset_and_iconv(tmp_path: Path) -> None:
    f = tmp_path / "c.jsonl"
    data = b'{"id": "a", "text": "ok"}\n{"id": "b", "text": "caf\xe9"}\n'
    f.write_bytes(data)
    msg = _error([f])
    assert f"{f}:2" in msg and "0xe9" in msg and "iconv" in msg
    assert f"byte offset {data.index(0xE9)}" in msg


def test_non_utf8_text_file(tmp_path: Path) -> None:
    f = tmp_path / "doc.txt"
    f.write_bytes(b"line one\nline \xff two\n")
    msg = _error([f])
    assert f"{f}:2" in msg and "byte offset 14" in msg and "iconv" in msg


def test_duplicate_ids_across_inputs_name_both_locations(tmp_path: Path) -> None:
    a = _jsonl(tmp_path / "a.jsonl", {"id": "x", "text": "1"}, {"id": "dup", "text": "2"})
    b = _jsonl(tmp_path / "b.jsonl", {"id": 5, "text": "3"}, {"_id": "dup", "text": "4"})
    msg = _error([a, b])
    assert f"{a}:2" in msg and f"{b}:2" in msg and "'dup'" in msg


def test_duplicate_between_text_files(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("1", encoding="utf-8")
    (tmp_path / "x.md").write_text("2", encoding="utf-8")
    msg = _error([tmp_path])
    assert "x.md" in msg and "x.txt" in msg and "duplicate" in msg


def test_hash_in_text_file_path_is_rejected(tmp_path: Path) -> None:
    f = tmp_path / "c#1.txt"
    f.write_text("x", encoding="utf-8")
    msg = _error([f])
    assert str(f) in msg and "'#'" in msg


def test_empty_corpus_lists_paths(tmp_path: Path) -> None:
    empty = _jsonl(tmp_path / "e.jsonl", "", "  ")
    folder = tmp_path / "nothing"
    folder.mkdir()
    msg = _error([empty, folder])
    assert "no documents found" in msg and str(empty) in msg and str(folder) in msg


def test_missing_path_and_unsupported_type(tmp_path: Path) -> None:
    assert "does not exist" in _error([tmp_path / "nope.jsonl"])
    csv = tmp_path / "c.csv"
    csv.write_text("a,b", encoding="utf-8")
    assert "unsupported file type" in _error([csv]) and ".jsonl" in _error([csv])
    assert "no paths" in _error([])


def test_corrupt_gzip(tmp_path: Path) -> None:
    f = tmp_path / "c.jsonl.gz"
    f.write_bytes(b"not gzip at all")
    assert str(f) in _error([f]) and "gzip" in _error([f])


def test_check_document() -> None:
    check_document(Document("a", "text"))
    with pytest.raises(CorpusError, match="reserved"):
        check_document(Document("a#b", "t"))
    with pytest.raises(CorpusError, match="string"):
        check_document(Document(3, "t"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        check_document("not a document")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- splitting


def test_short_document_keeps_its_id() -> None:
    doc = Document("d", "  a few words  ", title="T")
    (p,) = split_passages(doc, max_words=3, overlap=1)
    assert (p.id, p.doc_id, p.text, p.title, p.start, p.end) == ("d", "d", doc.text, "T", 0, len(doc.text))


def test_long_document_windows() -> None:
    doc = Document("d", "w0 w1\tw2\n\nw3 w4 w5 w6")
    ps = split_passages(doc, max_words=3, overlap=1)
    assert [p.id for p in ps] == ["d#0", "d#1", "d#2"]
    assert [p.text.split() for p in ps] == [["w0", "w1", "w2"], ["w2", "w3", "w4"], ["w4", "w5", "w6"]]
    assert ps[1].text == "w2\n\nw3 w4"


def test_long_document_has_no_short_tail() -> None:
    """8 words in windows of 3 (stride 2) need 4 windows; they are spread evenly and all full, where a plain
    stride would end on a two-word tail ("w6 w7" after "w4 w5 w6") that BM25 rewards for its shortness."""
    ps = split_passages(Document("d", " ".join(f"w{i}" for i in range(8))), max_words=3, overlap=1)
    assert [p.text for p in ps] == ["w0 w1 w2", "w1 w2 w3", "w3 w4 w5", "w5 w6 w7"]


@pytest.mark.parametrize(("max_words", "overlap"), [(0, 0), (-1, 0), (3, -1), (3, 3), (3, 4)])
def test_bad_split_params(max_words: int, overlap: int) -> None:
    with pytest.raises(ConfigError):
        split_passages(Document("d", "x"), max_words=max_words, overlap=overlap)
    with pytest.raises(ConfigError):
        SplitConfig(max_words, overlap)


_WHITESPACE = st.sampled_from([" ", "  ", "\n", "\t", "\r\n", "\u00a0", "\u2003", "\x1c"])
_WORDS = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6).filter(lambda w: not w.isspace())


@st.composite
def _texts(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(st.text(max_size=80))  # anything, including pure whitespace and unicode spaces
    words = draw(st.lists(_WORDS, max_size=40))
    seps = draw(st.lists(_WHITESPACE, min_size=len(words) + 1, max_size=len(words) + 1))
    return seps[0] + "".join(w + s for w, s in zip(words, seps[1:]))


@settings(max_examples=300, deadline=None)
@given(text=_texts(), max_words=st.integers(1, 8), data=st.data())
def test_split_offsets_cover_and_ids(text: str, max_words: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, max_words - 1))
    doc = Document("doc", text, title="t")
    ps = split_passages(doc, max_words=max_words, overlap=overlap)
    words = [m.span() for m in re.finditer(r"\S+", text)]
    for p in ps:
        assert text[p.start:p.end] == p.text
        assert p.doc_id == "doc" and p.title == "t"
        assert doc_id_of(p.id) == "doc"
    if len(words) <= max_words:
        assert [(p.id, p.start, p.end) for p in ps] == [("doc", 0, len(text))]
        return
    assert [p.id for p in ps] == [f"doc#{i}" for i in range(len(ps))]
    starts = {s for s, _ in words}
    ends = {e for _, e in words}
    for i, p in enumerate(ps):
        n = len(re.findall(r"\S+", p.text))
        assert p.start in starts and p.end in ends  # cut on whitespace boundaries
        assert n == max_words  # every window is full: no short tail
        if i:  # consecutive windows advance and share at least `overlap` words
            shared = [w for w in words if ps[i - 1].start <= w[0] and w[1] <= ps[i - 1].end
                      and p.start <= w[0] and w[1] <= p.end]
            assert ps[i - 1].start < p.start and overlap <= len(shared) < max_words
    stride = max_words - overlap  # the fewest windows that cover the words at this stride
    assert len(ps) == 1 + -(-(len(words) - max_words) // stride)
    for s, e in words:  # every word lies inside some passage
        assert any(p.start <= s and e <= p.end for p in ps)
    assert ps[0].start == words[0][0] and ps[-1].end == words[-1][1]


# ----------------------------------------------------------------------------- ids, hashes


def test_doc_id_of() -> None:
    assert doc_id_of("abc#12") == "abc"
    assert doc_id_of("abc") == "abc"
    assert doc_id_of("a#b") == "a#b"  # not a passage suffix


def test_passages_to_documents_keeps_max_in_rank_order() -> None:
    hits = [("a#1", 3.0), ("b", 2.0), ("a#0", 2.5), ("c#4", 2.0), ("c#0", 1.0), ("d", 2.2)]
    assert passages_to_documents(hits) == [("a", 3.0), ("d", 2.2), ("b", 2.0), ("c", 2.0)]
    assert passages_to_documents([]) == []


def test_content_hash_sensitivity() -> None:
    base = Document("a", "text", title="T", metadata={"x": 1, "y": [1, 2]})
    h = content_hash(base)
    assert h == content_hash(Document("other-id", "text", title="T", metadata={"y": [1, 2], "x": 1}))
    for changed in (Document("a", "text!", "T", base.metadata), Document("a", "text", "T2", base.metadata),
                    Document("a", "text", "T", {"x": 2, "y": [1, 2]}), Document("a", "Ttext", "", base.metadata)):
        assert content_hash(changed) != h
    with pytest.raises(CorpusError, match="JSON"):
        content_hash(Document("a", "t", metadata={"x": object()}))


def test_corpus_fingerprint_depends_on_order_and_content() -> None:
    ps = split_passages(Document("d", "a b c d e f g"), max_words=3, overlap=1)
    pairs = [(p.id, passage_hash(p)) for p in ps]
    assert corpus_fingerprint(pairs) == corpus_fingerprint(list(pairs))
    assert corpus_fingerprint(pairs) != corpus_fingerprint(pairs[::-1])
    assert corpus_fingerprint(pairs) != corpus_fingerprint(pairs[:-1])
