"""QA loaders (KILT, HotpotQA/2Wiki, MuSiQue, JSONL, the shared layout), their errors, and the corpus converter."""
from __future__ import annotations

import json

import pytest

from eval.qa_data import (
    QAExample,
    load_qa,
    paragraph_id,
    write_context_corpus,
)
from indexers.errors import ConfigError, CorpusError
from indexers.ingest import read_corpus

KILT = {"id": "k1", "input": "who wrote hamlet", "output": [
    {"answer": "William Shakespeare", "provenance": [
        {"wikipedia_id": "1234", "title": "Hamlet", "start_paragraph_id": 2, "end_paragraph_id": 3}]},
    {"answer": "Shakespeare"}, {"provenance": [{"wikipedia_id": "99"}]}]}
HOTPOT = {"_id": "h1", "question": "Which city?", "answer": "Paris", "type": "bridge",
          "supporting_facts": [["France", 0], ["Eiffel Tower", 1], ["France", 1]],
          "context": [["France", ["France is a country. ", "Its capital is Paris."]],
                      ["Eiffel Tower", ["The tower ", "is in Paris."]], ["Rome", ["Rome is in Italy."]]]}
MUSIQUE = {"id": "m1", "question": "Q?", "answer": "A", "answer_aliases": ["Alpha"], "answerable": True,
           "paragraphs": [{"idx": 0, "title": "T", "paragraph_text": "one", "is_supporting": True},
                          {"idx": 1, "title": "T", "paragraph_text": "two", "is_supporting": False}]}


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_kilt(tmp_path):
    [ex] = load_qa(_jsonl(tmp_path / "k.jsonl", [KILT]))
    assert ex == QAExample("k1", "who wrote hamlet", ("William Shakespeare", "Shakespeare"),
                           ("1234_2", "1234_3"), ("Hamlet", "99"))


def test_hotpotqa_json_array_and_2wiki_shape(tmp_path):
    path = tmp_path / "h.json"
    path.write_text(json.dumps([HOTPOT]), encoding="utf-8")
    [ex] = load_qa(path)
    assert ex.id == "h1" and ex.answers == ("Paris",)
    assert ex.provenance_pages == ("France", "Eiffel Tower")
    france = paragraph_id("France", "France is a country. Its capital is Paris.")
    assert ex.supporting_ids[0] == france and len(ex.context) == 3
    assert ex.context[0].title == "France" and ex.context[0].text == "France is a country. Its capital is Paris."
    assert "#" not in paragraph_id("C# (language)", "x")


def test_musique_keeps_same_title_paragraphs_apart(tmp_path):
    [ex] = load_qa(_jsonl(tmp_path / "m.jsonl", [MUSIQUE]))
    assert ex.answers == ("A", "Alpha")
    assert len({d.id for d in ex.context}) == 2
    assert ex.supporting_ids == (ex.context[0].id,) and ex.provenance_pages == ("T",)


def test_plain_jsonl_and_limit(tmp_path):
    path = _jsonl(tmp_path / "p.jsonl", [{"id": 1, "question": "q1", "answer": "a"},
                                         {"id": "2", "question": "q2", "answers": ["b", "B2", "b"]}])
    a, b = load_qa(path)
    assert (a.id, a.answers, a.supporting_ids) == ("1", ("a",), ())
    assert b.answers == ("b", "B2")
    assert len(load_qa(path, limit=1)) == 1


@pytest.mark.parametrize("lines,match", [
    (['{"id": "1", "question": "q", "answers": ["a"]}', '{"id": "2", "question": '], r"p\.jsonl:2: malformed JSON"),
    (['{"id": "1", "question": "q"}'], r"p\.jsonl:1: record has no gold answer"),
    (['{"id": "1", "question": "q", "answers": ["a"]}', '', '{"id": "1", "question": "r", "answers": ["b"]}'],
     r"p\.jsonl:3: duplicate question id '1'"),
    (['{"id": "1", "text": "q"}'], r"p\.jsonl:1: cannot tell the QA format"),
    (['[1, 2]'], r"p\.jsonl:1: expected a JSON object"),
    (['{"id": "", "question": "q", "answers": ["a"]}'], r"p\.jsonl:1: 'id' must be a non-empty string"),
    (['{"id": "1", "question": "q", "answers": [1.5]}'], r"p\.jsonl:1: 'answers' must be a list of strings"),
    ([], r"no QA records"),
])
def test_errors_name_file_and_line(tmp_path, lines, match):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(CorpusError, match=match):
        load_qa(path)


def test_more_errors(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_qa(tmp_path / "nope.jsonl")
    bad = dict(HOTPOT, supporting_facts=[["Nowhere", 0]])
    (tmp_path / "h.json").write_text(json.dumps([HOTPOT, bad]), encoding="utf-8")
    with pytest.raises(CorpusError, match=r"h\.json: record 1: supporting fact title 'Nowhere'"):
        load_qa(tmp_path / "h.json")
    (tmp_path / "b.jsonl").write_bytes(b'{"id": "1", "question": "q", "answers": ["a"]}\n{"id": "\xff"}\n')
    with pytest.raises(CorpusError, match=r"b\.jsonl:2: invalid UTF-8"):
        load_qa(tmp_path / "b.jsonl")
    with pytest.raises(ConfigError, match="unknown QA format 'squad'"):
        load_qa(tmp_path / "b.jsonl", format="squad")
    with pytest.raises(ConfigError, match="limit"):
        load_qa(tmp_path / "b.jsonl", limit=0)


def test_converter_writes_a_readable_deduplicated_corpus(tmp_path):
    path = tmp_path / "h.json"
    path.write_text(json.dumps([HOTPOT, dict(HOTPOT, _id="h2")]), encoding="utf-8")
    exs = load_qa(path)
    assert write_context_corpus(exs, tmp_path / "c" / "corpus.jsonl") == 3
    docs = list(read_corpus(tmp_path / "c" / "corpus.jsonl"))
    assert {d.id for d in docs} == {d.id for d in exs[0].context}
    assert set(exs[0].supporting_ids) <= {d.id for d in docs}


