import json

import pytest

from rag import RAG, Answer, ConfigError, IndexFormatError, SearchResult


@pytest.fixture(scope="module")
def rag(hash_index):
    with RAG.open(hash_index, generator="smollm-135m", threads=2) as r:
        yield r


def test_search_returns_typed_result(rag):
    res = rag.search("Shirley Temple", store="bm25", k=3)
    assert isinstance(res, SearchResult) and res.store == "bm25" and len(res.hits) == 3
    assert res.hits[0].title == "Shirley Temple" and res.timings["retrieve"] > 0
    json.dumps(res.to_dict())


def test_open_errors_are_clear(tmp_path):
    with pytest.raises(IndexFormatError, match="adarag index CORPUS --out"):
        RAG.open(tmp_path / "nope")
    with pytest.raises(TypeError, match="index_dir must be"):
        RAG.open(123)
    with pytest.raises(TypeError, match="generator must be"):
        RAG.open(tmp_path, generator=5)


def test_ask_validates_before_loading_a_model(hash_index):
    r = RAG.open(hash_index, generator="no-such-model")
    with pytest.raises(ConfigError, match="empty"):
        r.ask("  ")
    with pytest.raises(TypeError):
        r.ask(None)
    with pytest.raises(ConfigError, match="max_new_tokens"):
        r.ask("who?", max_new_tokens=0)
    with pytest.raises(ConfigError, match="unknown model.*qwen-1.5b"):
        r.ask("who is Shirley Temple?")
    r.close()


def test_ask_returns_a_typed_answer(rag):
    ans = rag.ask("Shirley Temple Black was born on what date?", store="bm25", k=2, max_new_tokens=16)
    assert isinstance(ans, Answer) and ans.mode == "one_shot" and ans.generator == "smollm-135m"
    assert ans.passages[0].title == "Shirley Temple"
    assert set(ans.citations) <= {h.id for h in ans.passages}
    assert 0 < ans.n_new_tokens <= 16 and ans.n_prompt_tokens > 50 and ans.timings["generate"] > 0
    assert json.loads(json.dumps(ans.to_dict()))["mode"] == "one_shot"


@pytest.mark.parametrize("question, gold, title", [
    ("In what year was Shirley Temple Black born?", "1928", "Shirley Temple"),
    ("When did the radio program Meet Corliss Archer first air?", "1943", "Meet Corliss Archer"),
])
def test_ask_grounds_the_answer_in_the_retrieved_passage(hash_index, question, gold, title):
    """The fact is only in the retrieved passage: a broken model, prompt or retrieval would not produce it."""
    with RAG.open(hash_index, generator="qwen-0.5b", threads=2) as r:
        ans = r.ask(question, store="bm25", k=3, max_new_tokens=32)
    assert gold in ans.answer
    cited_titles = {h.title for h in ans.passages if h.id in ans.citations}
    assert title in cited_titles, (ans.raw_text, ans.citations)
