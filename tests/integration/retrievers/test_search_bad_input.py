"""retrievers/search.py check_query on hostile input (issue #16): a lone surrogate in a query used to reach a
store's tokenizer and fail there with the tokenizer's own message."""
import pytest

from indexers.errors import ConfigError
from indexers.index import open_index
from retrievers.search import Retriever


@pytest.mark.parametrize("store", ["bm25", "dense", "fused"])
def test_every_store_refuses_it_before_tokenizing(hash_index, store):
    with open_index(hash_index) as ix:
        r = Retriever(ix)
        with pytest.raises(ConfigError, match="query has an unpaired surrogate"):
            r.search("Shirley \ud800 Temple", store, 3)
        with pytest.raises(ConfigError, match="unpaired surrogate"):
            r.search_batch(["fine", "bad \udc80"], store, 3)
