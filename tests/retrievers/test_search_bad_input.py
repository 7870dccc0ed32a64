"""retrievers/search.py check_query on hostile input (issue #16): a lone surrogate in a query used to reach a
store's tokenizer and fail there with the tokenizer's own message."""
import pytest

from indexers.errors import ConfigError
from indexers.index import open_index
from retrievers.search import Retriever, check_query


@pytest.mark.parametrize("query", ["\ud800", "who wrote \udfff the iliad", "x" + "\ud83d"])
def test_a_lone_surrogate_is_a_config_error_naming_the_fix(query):
    with pytest.raises(ConfigError, match="question has an unpaired surrogate.*valid Unicode"):
        check_query(query, what="question")


def test_valid_unicode_passes():
    for q in ("Émile Zola", "東京タワー", "emoji 😀 ok", "tab\tand newline\n"):
        assert check_query(q) == q


@pytest.mark.parametrize("store", ["bm25", "dense", "fused"])
def test_every_store_refuses_it_before_tokenizing(hash_index, store):
    with open_index(hash_index) as ix:
        r = Retriever(ix)
        with pytest.raises(ConfigError, match="query has an unpaired surrogate"):
            r.search("Shirley \ud800 Temple", store, 3)
        with pytest.raises(ConfigError, match="unpaired surrogate"):
            r.search_batch(["fine", "bad \udc80"], store, 3)
