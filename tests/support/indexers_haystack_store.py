"""Helpers shared by tests/unit/indexers/test_haystack_store.py and tests/integration/indexers/test_haystack_store.py."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
import pytest
from haystack import Document
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.testing.document_store import (
    CountDocumentsByFilterTest,
    DocumentStoreBaseExtendedTests,
)
from indexers.haystack_store import SQLDocumentStore
from haystack import Document
from indexers.haystack_store import SQLDocumentStore


class HaystackConformance(DocumentStoreBaseExtendedTests, CountDocumentsByFilterTest):
    """Haystack's suite (count, write, delete, filter, delete_all, delete/update/count by filter).
    Subclasses provide `url`; each test gets a fresh namespace, dropped afterwards."""

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def document_store(self, url: str) -> Iterator[SQLDocumentStore]:
        store = SQLDocumentStore(url, namespace="hs" + uuid.uuid4().hex[:12])
        yield store
        store.store.drop()
        store.close()

    # The base test raises NotImplementedError: the default policy is store-specific. Ours: NONE means FAIL.
    def test_write_documents(self, document_store: SQLDocumentStore) -> None:
        docs = [Document(content="first"), Document(content="second", meta={"title": "T", "n": 1})]
        assert document_store.write_documents(docs) == 2
        self.assert_documents_are_equal(document_store.filter_documents(), docs)
        with pytest.raises(DuplicateDocumentError):
            document_store.write_documents([Document(content="third"), docs[0]])
        self.assert_documents_are_equal(document_store.filter_documents(), docs)  # nothing of the batch written

    # The two recreate_index tests call pytest.skip for stores whose delete_all_documents has no recreate
    # parameter. Ours has none on purpose (the tables stay; `store.drop()` removes them), so instead of a
    # skip these check that the namespace stays usable after delete_all_documents.
    def test_delete_all_documents_without_recreate_index(self, document_store: SQLDocumentStore) -> None:
        document_store.write_documents([Document(id="1", content="a"), Document(id="2", content="b")])
        document_store.delete_all_documents()
        assert document_store.count_documents() == 0
        assert document_store.store.count_passages() == 0
        document_store.write_documents([Document(id="1", content="a again")])
        assert [d.content for d in document_store.filter_documents()] == ["a again"]

    def test_delete_all_documents_with_recreate_index(self, document_store: SQLDocumentStore) -> None:
        reopened = SQLDocumentStore(document_store.url, namespace=document_store.namespace)
        document_store.write_documents([Document(id="1", content="a")])
        document_store.delete_all_documents()
        assert reopened.count_documents() == 0  # another handle on the same namespace sees the deletion
        reopened.write_documents([Document(id="3", content="new")])
        assert [d.content for d in document_store.filter_documents()] == ["new"]
        reopened.close()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hs.sqlite'}"


@pytest.fixture
def store(url: str) -> Iterator[SQLDocumentStore]:
    s = SQLDocumentStore(url, namespace="unit")
    yield s
    s.close()
