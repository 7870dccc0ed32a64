"""indexers/sql_store.py: one conformance class, run on SQLite always and on PostgreSQL when
ADARAG_TEST_PG_URL is set (e.g. `export ADARAG_TEST_PG_URL="$(bash .ci/postgres.sh)"`)."""
from __future__ import annotations

from pathlib import Path

import pytest

from indexers.errors import ConfigError, IndexFormatError
from indexers.sql_store import SQLStore
from tests.support.indexers_sql_store import StoreContract


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'docs.sqlite'}"


def test_bad_namespace_and_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="namespace"):
        SQLStore(f"sqlite:///{tmp_path / 'x.sqlite'}", namespace="Bad-Name; DROP")
    with pytest.raises(ConfigError, match="URL"):
        SQLStore("not a url")
    with pytest.raises(ConfigError):
        SQLStore(tmp_path)  # type: ignore[arg-type]


def test_unreadable_sqlite_path(tmp_path: Path) -> None:
    with pytest.raises(IndexFormatError, match="cannot open"):
        SQLStore(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.sqlite'}")
