"""Helpers shared by tests/unit/indexers/test_filters.py and tests/integration/indexers/test_filters.py."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st
from indexers.errors import ConfigError
from indexers.filters import check_filters
from indexers.sql_store import SQLStore
from indexers.types import Document
from haystack import Document as HDocument  # noqa: E402
from haystack.utils.filters import document_matches_filter  # noqa: E402
from indexers.filters import check_filters


haystack = pytest.importorskip("haystack", reason="the [haystack] extra is not installed (it holds the oracle)")


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
