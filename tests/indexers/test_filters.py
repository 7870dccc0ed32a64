"""indexers/filters.py + SQLStore.filter_*: SQL-compiled Haystack filters equal Haystack's own evaluator
(`document_matches_filter`, the oracle) on random metadata and filters, on SQLite and, when ADARAG_TEST_PG_URL
is set, PostgreSQL; bad filters fail up front with a message saying what to write."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from indexers.errors import ConfigError
from indexers.filters import MAX_DEPTH, MAX_NODES, check_filters
from indexers.sql_store import SQLStore
from indexers.types import Document

haystack = pytest.importorskip("haystack", reason="the [haystack] extra is not installed (it holds the oracle)")
from haystack import Document as HDocument  # noqa: E402
from haystack.utils.filters import document_matches_filter  # noqa: E402
from tests.prereq import needs

PG_URL = os.environ.get("ADARAG_TEST_PG_URL", "")

# Strings dateutil cannot parse: a stored "1" is a date to Haystack's lenient `>` (day 1 of this month), which
# we refuse on purpose (see indexers/filters.py), so the generator leaves such strings out.
DATES = ["2020-01-01", "2020-01-01T00:00:00", "2020-01-01T10:00:00+02:00", "2020-01-01T08:00:00Z",
         "2021-06-30 12:30", "2019-12-31T23:59:59.500", "2020-02-30"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([-1.5, 0.0, 2.0, 2.5]),
    st.sampled_from(["x", "hello", "", *DATES]),
)
META_VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3),
                        st.dictionaries(st.sampled_from(["a", "b"]), SCALARS, max_size=2))
METAS = st.dictionaries(st.sampled_from(["a", "b", "c"]), META_VALUES, max_size=3)
FIELDS = ["meta.a", "meta.b", "meta.a.b", "meta.c.a", "a", "id", "content", "meta.zz", "foo.a"]
FILTER_SCALARS = st.one_of(SCALARS, st.just(datetime(2020, 1, 1, 8, tzinfo=timezone.utc)),
                           st.sampled_from(["d1", "alpha"]))


@st.composite
def comparisons(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from(["==", "!=", ">", ">=", "<", "<=", "in", "not in"]))
    value = draw(st.lists(FILTER_SCALARS, max_size=3)) if op in ("in", "not in") else draw(FILTER_SCALARS)
    return {"field": draw(st.sampled_from(FIELDS)), "operator": op, "value": value}


FILTERS = st.recursive(
    comparisons(),
    lambda sub: st.builds(lambda op, conds: {"operator": op, "conditions": conds},
                          st.sampled_from(["AND", "OR", "NOT"]), st.lists(sub, max_size=3)),
    max_leaves=6,
)
CORPORA = st.lists(st.tuples(st.sampled_from(["alpha", "beta gamma", "2020-01-01"]), METAS), max_size=6)


def _oracle(filters: dict[str, Any], docs: list[Document]) -> list[str] | type[Exception]:
    try:
        return [d.id for d in docs
                if document_matches_filter(filters, HDocument(id=d.id, content=d.text, meta=d.metadata))]
    except Exception as e:  # noqa: BLE001 - Haystack raises FilterError, or TypeError for e.g. [1] > 2
        return type(e)


class FilterBackend:
    """Runs on every backend; subclasses provide `store`."""

    @pytest.fixture
    def store(self) -> Iterator[SQLStore]:
        raise NotImplementedError

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                               HealthCheck.differing_executors])
    @given(corpus=CORPORA, filters=FILTERS)
    def test_sql_equals_haystack(self, store: SQLStore, corpus: list[tuple[str, dict[str, Any]]],
                                 filters: dict[str, Any]) -> None:
        store.delete_documents(store.document_ids())
        docs = [Document(id=f"d{i}", text=text, title="", metadata=meta) for i, (text, meta) in enumerate(corpus)]
        if docs:
            store.add_documents(docs)
        try:
            check_filters(filters)
        except ConfigError:
            event("refused up front")
            return
        expected = _oracle(filters, docs)
        if isinstance(expected, list):
            event(f"matches {min(len(expected), 2)}")
            assert store.filter_document_ids(filters) == expected
            assert [d.id for d in store.filter_documents(filters)] == expected
            assert store.filter_passage_ids(filters) == [p for p in store.passage_ids()
                                                         if p.split("#")[0] in set(expected)]
        else:
            event("haystack raises")
            with pytest.raises(ConfigError, match="cannot compare"):
                store.filter_document_ids(filters)

    def test_nested_fields_dates_and_order(self, store: SQLStore) -> None:
        store.delete_documents(store.document_ids())
        store.add_documents([
            Document(id="late", text="t", title="", metadata={"p": {"year": 2001}, "at": "2020-01-01T12:00:00+02:00"}),
            Document(id="early", text="t", title="", metadata={"p": {"year": 1999}, "at": "2020-01-01T09:00:00"}),
            Document(id="none", text="t", title="", metadata={"p": None}),
        ])
        assert store.filter_document_ids({"field": "meta.p.year", "operator": ">=", "value": 2000}) == ["late"]
        at = datetime(2020, 1, 1, 10, 30, tzinfo=timezone(timedelta(hours=2)))  # wall clock vs naive, instant vs aware
        assert store.filter_document_ids({"field": "meta.at", "operator": "<", "value": at.isoformat()}) == ["early"]
        assert store.filter_document_ids({"operator": "NOT", "conditions": [
            {"field": "meta.p.year", "operator": "in", "value": [1999, 2001]}]}) == ["none"]
        assert store.filter_document_ids(None) == ["late", "early", "none"]


class TestSQLite(FilterBackend):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLStore]:
        with SQLStore(f"sqlite:///{tmp_path / 'f.sqlite'}") as s:
            yield s


@pytest.mark.postgres
@needs(bool(PG_URL), "PostgreSQL: set ADARAG_TEST_PG_URL (`export ADARAG_TEST_PG_URL=\"$(bash .ci/postgres.sh)\"`)")
class TestPostgres(FilterBackend):
    @pytest.fixture
    def store(self) -> Iterator[SQLStore]:
        s = SQLStore(PG_URL, namespace="f" + uuid.uuid4().hex[:12])
        yield s
        s.drop()
        s.close()


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
