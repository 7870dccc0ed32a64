"""retrievers/search.py check_query on hostile input (issue #16): a lone surrogate in a query used to reach a
store's tokenizer and fail there with the tokenizer's own message."""
import pytest

from indexers.errors import ConfigError
from retrievers.search import check_query


@pytest.mark.parametrize("query", ["\ud800", "who wrote \udfff the iliad", "x" + "\ud83d"])
def test_a_lone_surrogate_is_a_config_error_naming_the_fix(query):
    with pytest.raises(ConfigError, match="question has an unpaired surrogate.*valid Unicode"):
        check_query(query, what="question")


def test_valid_unicode_passes():
    for q in ("Émile Zola", "東京タワー", "emoji 😀 ok", "tab\tand newline\n"):
        assert check_query(q) == q


