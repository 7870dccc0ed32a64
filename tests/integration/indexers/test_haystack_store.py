"""indexers/haystack_store.py: Haystack's own DocumentStore conformance suite on SQLite, and on PostgreSQL when
ADARAG_TEST_PG_URL is set; plus serialisation, field round trips, policies and a Pipeline using the store."""
from __future__ import annotations

import os

import pytest

pytest.importorskip("haystack", reason="the [haystack] extra is not installed")


from tests.prereq import needs
from tests.support.indexers_haystack_store import HaystackConformance
from tests.support.indexers_haystack_store import store, url  # noqa: F401 (fixtures)

PG_URL = os.environ.get("ADARAG_TEST_PG_URL", "")


@pytest.mark.postgres
@needs(bool(PG_URL), "PostgreSQL: set ADARAG_TEST_PG_URL (`export ADARAG_TEST_PG_URL=\"$(bash .ci/postgres.sh)\"`)")
class TestPostgresConformance(HaystackConformance):
    @pytest.fixture
    def url(self) -> str:
        return PG_URL


# ---------------------------------------------------------------------------------------------- adapter


