"""indexers/filters.py + SQLStore.filter_*: SQL-compiled Haystack filters equal Haystack's own evaluator
(`document_matches_filter`, the oracle) on random metadata and filters, on SQLite and, when ADARAG_TEST_PG_URL
is set, PostgreSQL; bad filters fail up front with a message saying what to write."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from indexers.sql_store import SQLStore

from tests.prereq import needs
from tests.support.indexers_filters import FilterBackend

PG_URL = os.environ.get("ADARAG_TEST_PG_URL", "")

# Strings dateutil cannot parse: a stored "1" is a date to Haystack's lenient `>` (day 1 of this month), which
# we refuse on purpose (see indexers/filters.py), so the generator leaves such strings out.


@pytest.mark.postgres
@needs(bool(PG_URL), "PostgreSQL: set ADARAG_TEST_PG_URL (`export ADARAG_TEST_PG_URL=\"$(bash .ci/postgres.sh)\"`)")
class TestPostgres(FilterBackend):
    @pytest.fixture
    def store(self) -> Iterator[SQLStore]:
        s = SQLStore(PG_URL, namespace="f" + uuid.uuid4().hex[:12])
        yield s
        s.drop()
        s.close()


