"""Haystack 3.x `DocumentStore` over `SQLStore`, so Haystack pipelines (DocumentWriter, filters) share our corpus.

Haystack `Document.content` is our text, `meta` our metadata (and `meta["title"]`, when a str, our title).
Fields we have no column for (embedding, sparse_embedding, blob, content=None) ride in `metadata["_haystack"]`
so they round-trip; `score` is a query result, so like other Haystack stores we do not persist it.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from indexers.errors import ConfigError, CorpusError, missing
from indexers.ingest import check_document
from indexers.sql_store import SQLStore
from indexers.types import Document as _Doc

try:
    from haystack import Document, default_from_dict, default_to_dict
    from haystack.dataclasses import ByteStream, SparseEmbedding
    from haystack.document_stores.errors import DuplicateDocumentError
    from haystack.document_stores.types import DuplicatePolicy
    from haystack.errors import FilterError
    from haystack.utils import Secret
except ImportError as e:  # only a missing haystack: a broken install should fail loudly as itself
    if e.name is None or not e.name.startswith("haystack"):
        raise
    raise missing("haystack", "haystack-ai") from None

__all__ = ["RESERVED_META_KEY", "SQLDocumentStore"]

log = logging.getLogger(__name__)

RESERVED_META_KEY = "_haystack"  # metadata key holding Haystack-only fields; user meta may not use it


@contextmanager
def _filter_errors() -> Iterator[None]:
    """Our filter errors are `ConfigError`s (core has no Haystack); Haystack callers expect its `FilterError`."""
    try:
        yield
    except ConfigError as e:
        raise FilterError(str(e)) from e


def _to_ours(doc: Document, where: str) -> _Doc:
    """Haystack Document -> ours; Haystack-only fields go under RESERVED_META_KEY."""
    if not isinstance(doc.meta, dict):
        raise CorpusError(f"{where}: Document {doc.id!r} meta must be a dict, got {type(doc.meta).__name__}")
    if RESERVED_META_KEY in doc.meta:
        raise CorpusError(f"{where}: Document {doc.id!r} uses the reserved meta key {RESERVED_META_KEY!r}: rename it")
    extra: dict[str, Any] = {}
    if doc.content is None:
        extra["content"] = None
    if doc.embedding is not None:
        extra["embedding"] = [float(x) for x in doc.embedding]
    if doc.sparse_embedding is not None:
        extra["sparse_embedding"] = doc.sparse_embedding.to_dict()
    if doc.blob is not None:
        extra["blob"] = doc.blob.to_dict()  # bytes as a JSON list of ints: fine for small blobs only
    metadata = {**doc.meta, RESERVED_META_KEY: extra} if extra else dict(doc.meta)
    title = doc.meta.get("title")
    ours = _Doc(id=doc.id, text=doc.content or "", title=title if isinstance(title, str) else "", metadata=metadata)
    check_document(ours, where)  # e.g. an id with '#' (reserved for passage ids) fails here, naming the fix
    return ours


def _to_haystack(doc: _Doc) -> Document:
    meta = dict(doc.metadata)
    extra = meta.pop(RESERVED_META_KEY, None) or {}
    sparse, blob = extra.get("sparse_embedding"), extra.get("blob")
    return Document(
        id=doc.id,
        content=None if "content" in extra else doc.text,
        meta=meta,
        embedding=extra.get("embedding"),
        sparse_embedding=SparseEmbedding.from_dict(sparse) if sparse is not None else None,
        blob=ByteStream.from_dict(blob) if blob is not None else None,
    )


def _has_password(url: str) -> bool:
    try:
        return bool(sa.engine.make_url(url).password)
    except sa.exc.ArgumentError:
        return False  # a bad URL is reported when the store opens


def _shown_url(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def _documents_arg(documents: Any, what: str) -> list[Document]:
    if isinstance(documents, (str, bytes, Document)) or not isinstance(documents, Iterable):
        raise ValueError(f"{what} takes a list of haystack Documents, got {type(documents).__name__}: wrap it in a list")
    out = list(documents)
    for i, doc in enumerate(out):
        if not isinstance(doc, Document):
            raise ValueError(f"{what}: item #{i} must be a haystack.Document, got {type(doc).__name__}")
    return out


class SQLDocumentStore:
    """Haystack `DocumentStore` backed by `SQLStore(url, namespace=...)` (SQLite or PostgreSQL).

    `__init__` only records its JSON-serialisable arguments; the database is opened on first use. Pass
    `url=Secret.from_env_var(...)` when the URL holds a password, so `to_dict()` does not write it out.
    `DuplicatePolicy.NONE` means FAIL, as in Haystack's InMemoryDocumentStore. Filters are compiled to SQL
    (`indexers.filters`, Haystack's semantics; its docstring lists where we are stricter) and run by the database.
    """

    def __init__(self, url: str | Secret, namespace: str = "") -> None:
        if not isinstance(url, (str, Secret)):
            raise ConfigError(f"url must be a str like 'sqlite:///docs.sqlite' or a haystack Secret, got {type(url).__name__}")
        if not isinstance(namespace, str):
            raise ConfigError(f"namespace must be a str, got {type(namespace).__name__}")
        self.url = url
        self.namespace = namespace
        self._sql: SQLStore | None = None
        self._open_lock = threading.Lock()

    @property
    def store(self) -> SQLStore:
        """The underlying SQLStore, opened (and its tables created) on first access."""
        if self._sql is None:
            with self._open_lock:
                if self._sql is None:
                    url = self.url.resolve_value() if isinstance(self.url, Secret) else self.url
                    if not isinstance(url, str) or not url:
                        raise ConfigError("the url Secret resolved to nothing: set its environment variable to a database URL")
                    self._sql = SQLStore(url, namespace=self.namespace)
        return self._sql

    # ------------------------------------------------------------------ serialisation

    def to_dict(self) -> dict[str, Any]:
        if isinstance(self.url, str) and _has_password(self.url):
            log.warning("SQLDocumentStore.to_dict writes the database password in clear: pass url=Secret.from_env_var(...)")
        return default_to_dict(self, url=self.url, namespace=self.namespace)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SQLDocumentStore:
        return default_from_dict(cls, data)  # deserialises an env-var Secret url itself

    # ------------------------------------------------------------------ protocol

    def count_documents(self) -> int:
        return self.store.count_documents()

    def filter_documents(self, filters: dict[str, Any] | None = None) -> list[Document]:
        """Stored documents matching `filters` (all of them when empty), in insertion order."""
        store = self.store
        with _filter_errors():
            docs = store.filter_documents(filters, reserved_key=RESERVED_META_KEY)
        return [_to_haystack(d) for d in docs]

    def write_documents(self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE) -> int:
        """Write `documents` in one transaction; returns how many were written (SKIP leaves out existing ids).

        FAIL (and NONE) raises `DuplicateDocumentError` and writes nothing if any id is stored or repeats in
        the batch; OVERWRITE replaces existing ids in place (the last copy in the batch wins).
        """
        docs = _documents_arg(documents, "write_documents")
        if not isinstance(policy, DuplicatePolicy):
            raise ValueError(f"policy must be a haystack DuplicatePolicy, got {policy!r}")
        if policy == DuplicatePolicy.NONE:
            policy = DuplicatePolicy.FAIL
        if policy == DuplicatePolicy.OVERWRITE:
            last = {d.id: d for d in docs}  # dict keeps first-seen order, holds the last copy
            ours = [_to_ours(d, "write_documents") for d in last.values()]
            if ours:
                self.store.upsert_documents(ours)
            return len(docs)
        unique: dict[str, Document] = {}
        for d in docs:
            if d.id in unique and policy == DuplicatePolicy.FAIL:
                raise DuplicateDocumentError(f"ID '{d.id}' appears twice in this batch; nothing was written")
            unique.setdefault(d.id, d)
        ours = [_to_ours(d, "write_documents") for d in unique.values()]  # validate before touching the DB
        stored = {d.id for d in self.store.get_documents(list(unique), missing="skip")} if unique else set()
        if stored and policy == DuplicatePolicy.FAIL:
            raise DuplicateDocumentError(f"ID(s) already exist: {sorted(stored)[:5]}; nothing was written "
                                         "(use DuplicatePolicy.SKIP or OVERWRITE)")
        new = [d for d in ours if d.id not in stored]
        if new:
            self.store.add_documents(new)
        if len(new) < len(docs):
            log.warning("write_documents skipped %d document(s) whose id already exists", len(docs) - len(new))
        return len(new)

    def delete_documents(self, document_ids: list[str]) -> None:
        """Delete by id; unknown ids are ignored (as Haystack's conformance tests require)."""
        self.store.delete_documents(document_ids)

    # ------------------------------------------------------------------ extended (not in the protocol)

    def delete_all_documents(self) -> None:
        """Delete every document; the tables stay (use `store.drop()` to remove them)."""
        self.store.delete_documents(self.store.document_ids())

    def count_documents_by_filter(self, filters: dict[str, Any]) -> int:
        return len(self._matching_ids(filters))

    def delete_by_filter(self, filters: dict[str, Any]) -> int:
        """Delete the documents matching `filters`; returns how many."""
        self._nonempty(filters)
        return self.store.delete_documents(self._matching_ids(filters))

    def update_by_filter(self, filters: dict[str, Any], meta: dict[str, Any]) -> int:
        """Merge `meta` into the meta of every document matching `filters`; returns how many matched."""
        if not isinstance(meta, dict):
            raise ValueError(f"meta must be a dict, got {type(meta).__name__}")
        self._nonempty(filters)
        matched = self.filter_documents(filters)
        updated = [replace(d, meta={**d.meta, **meta}) for d in matched]
        if updated:
            self.store.upsert_documents([_to_ours(d, "update_by_filter") for d in updated])
        return len(updated)

    # ------------------------------------------------------------------ helpers

    def _matching_ids(self, filters: dict[str, Any] | None) -> list[str]:
        store = self.store
        with _filter_errors():
            return store.filter_document_ids(filters, reserved_key=RESERVED_META_KEY)

    @staticmethod
    def _nonempty(filters: Any) -> None:
        if not filters:
            raise FilterError("filters must be a non-empty dict here: use delete_all_documents to touch everything")

    def close(self) -> None:
        if self._sql is not None:
            self._sql.close()

    def __repr__(self) -> str:
        shown = "Secret(...)" if isinstance(self.url, Secret) else _shown_url(self.url)
        return f"SQLDocumentStore(url={shown!r}, namespace={self.namespace!r})"
