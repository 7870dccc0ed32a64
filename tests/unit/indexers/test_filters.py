"""indexers/filters.py + SQLStore.filter_*: SQL-compiled Haystack filters equal Haystack's own evaluator
(`document_matches_filter`, the oracle) on random metadata and filters, on SQLite and, when ADARAG_TEST_PG_URL
is set, PostgreSQL; bad filters fail up front with a message saying what to write."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from indexers.errors import ConfigError
from indexers.filters import MAX_DEPTH, MAX_NODES, check_filters
from indexers.sql_store import SQLStore
from indexers.types import Document

from haystack import Document as HDocument  # noqa: E402
from haystack.utils.filters import document_matches_filter  # noqa: E402
from tests.support.indexers_filters import FilterBackend


# Strings dateutil cannot parse: a stored "1" is a date to Haystack's lenient `>` (day 1 of this month), which
# we refuse on purpose (see indexers/filters.py), so the generator leaves such strings out.


class TestSQLite(FilterBackend):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLStore]:
        with SQLStore(f"sqlite:///{tmp_path / 'f.sqlite'}") as s:
            yield s


@pytest.mark.parametrize(("filters", "says"), [
    ([], "must be a dict"),
    ({"field": "meta.a", "operator": "=", "value": 1}, "valid are"),
    ({"field": "meta.a", "value": 1}, "no 'operator'"),
    ({"operator": "XOR", "conditions": []}, "valid are"),
    ({"operator": "AND", "conditions": {}}, "must be a list"),
    ({"field": "meta.a", "operator": "in", "value": 1}, "write \\[1\\]"),
    ({"field": "meta.a", "operator": "in", "value": (1, 2)}, "takes a list"),
    ({"field": "meta.a", "operator": ">", "value": "abc"}, "ISO 8601"),
    ({"field": "meta.a", "operator": ">", "value": [1]}, "ISO 8601"),
    ({"field": "meta.a", "operator": "==", "value": [1]}, "scalar fields"),
    ({"field": "embedding", "operator": "==", "value": None}, "cannot be filtered"),
    ({"field": 'meta.a"b', "operator": "==", "value": 1}, "rename the key"),
    ({"field": "meta.a", "operator": "==", "value": float("nan")}, "finite"),
])
def test_bad_filters_say_what_to_write(filters: Any, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        check_filters(filters)


def test_depth_and_size_are_bounded() -> None:
    leaf: dict[str, Any] = {"field": "meta.a", "operator": "==", "value": 1}
    deep = leaf
    for _ in range(MAX_DEPTH + 1):
        deep = {"operator": "AND", "conditions": [deep]}
    with pytest.raises(ConfigError, match="nest deeper"):
        check_filters(deep)
    with pytest.raises(ConfigError, match="more than"):
        check_filters({"operator": "OR", "conditions": [leaf] * MAX_NODES})


def test_wide_filters_stay_within_sql_limits(tmp_path: Path) -> None:
    leaves = [{"field": "meta.n", "operator": "==", "value": i} for i in range(MAX_NODES - 1)]
    with SQLStore(f"sqlite:///{tmp_path / 'w.sqlite'}") as store:
        store.add_documents([Document(id=f"d{i}", text="t", title="", metadata={"n": i}) for i in range(5)])
        assert store.filter_document_ids({"operator": "OR", "conditions": leaves}) == [f"d{i}" for i in range(5)]
