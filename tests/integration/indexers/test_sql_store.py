"""indexers/sql_store.py: one conformance class, run on SQLite always and on PostgreSQL when
ADARAG_TEST_PG_URL is set (e.g. `export ADARAG_TEST_PG_URL="$(bash .ci/postgres.sh)"`)."""
from __future__ import annotations

import os

import pytest

from tests.prereq import needs
from tests.support.indexers_sql_store import StoreContract

PG_URL = os.environ.get("ADARAG_TEST_PG_URL", "")


@pytest.mark.postgres
@needs(bool(PG_URL), "PostgreSQL: set ADARAG_TEST_PG_URL (`export ADARAG_TEST_PG_URL=\"$(bash .ci/postgres.sh)\"`)")
class TestPostgresStore(StoreContract):
    @pytest.fixture
    def url(self) -> str:
        return PG_URL


