"""Documents and passages in SQL (SQLite file by default, PostgreSQL or any SQLAlchemy URL).

The store is the source of truth for passage text and corpus order: retrievers keep only row ids and scores,
`passage_ids()` fixes the row order, `fingerprint()` tells an index whether it was built on this content.
"""
from __future__ import annotations

import json
import logging
import re
import sqlite3
from pathlib import Path
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from indexers.errors import ConfigError, CorpusError, IndexFormatError, NotFoundError, missing
from indexers.filters import NO_MATCH, RAISES, compile_filters
from indexers.ingest import SplitConfig, check_document, content_hash, corpus_fingerprint, passage_hash, split_passages
from indexers.types import Document, Passage

__all__ = ["SCHEMA_VERSION", "SQLStore", "WriteSummary", "IndexWrite", "NotFoundError", "copy_sqlite"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_CHUNK = 500  # ids per IN (...) query: far below SQLite's and PostgreSQL's bind-parameter limits
_NAMESPACE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class WriteSummary:
    """What a write did, by document id; re-embed `added` + `updated`, drop `removed_passages` from indexes."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    removed_passages: tuple[str, ...] = ()
    n_passages_written: int = 0


@dataclass(frozen=True)
class IndexWrite:
    """What `SQLStore.write` did: the passages an index must add (new or changed documents, in batch order) and
    the stored passages it replaced or deleted (with their text, so the index can mark and account for them)."""

    summary: WriteSummary
    new_passages: tuple[Passage, ...]
    removed_passages: tuple[Passage, ...]
    n_deleted: int


def _tables(prefix: str) -> tuple[sa.MetaData, sa.Table, sa.Table, sa.Table, sa.Table]:
    md = sa.MetaData()
    documents = sa.Table(
        f"{prefix}documents", md,
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
    )
    passages = sa.Table(
        f"{prefix}passages", md,
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("doc_id", sa.Text, sa.ForeignKey(documents.c.id, ondelete="CASCADE"), nullable=False),
        sa.Column("ord", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("start", sa.Integer, nullable=False),
        sa.Column("end", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Index(f"{prefix}passages_doc_ord", "doc_id", "ord", unique=True),
    )
    meta = sa.Table(
        f"{prefix}adarag_meta", md,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    # Pre-images of the documents an index write changed, kept until that write's manifest is published: a
    # writer killed before publishing is rolled back from here (see SQLStore.write / rollback).
    undo = sa.Table(
        f"{prefix}adarag_undo", md,
        sa.Column("generation", sa.BigInteger, primary_key=True),
        sa.Column("doc_id", sa.Text, primary_key=True),
        sa.Column("pre", sa.JSON, nullable=True),  # None: the document did not exist before
    )
    return md, documents, passages, meta, undo


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=10000"):
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


def _id_list(ids: Iterable[str], what: str) -> list[str]:
    if isinstance(ids, (str, bytes)):
        raise ConfigError(f"{what} takes a list of ids, got the single string {ids!r}: wrap it as [{ids!r}]")
    out = list(ids)
    for i, x in enumerate(out):
        if not isinstance(x, str):
            raise ConfigError(f"{what}: id #{i} must be a str, got {type(x).__name__} {x!r}")
    return out


def _doc_list(docs: Iterable[Document], what: str) -> list[Document]:
    if isinstance(docs, (str, bytes, Document)):
        raise ConfigError(f"{what} takes a list of Documents, got a single {type(docs).__name__}: wrap it in a list")
    out = list(docs)
    seen: set[str] = set()
    for i, doc in enumerate(out):
        if not isinstance(doc, Document):
            raise ConfigError(f"{what}: item #{i} must be an indexers.types.Document, got {type(doc).__name__}")
        check_document(doc, f"{what}, item #{i}")
        if doc.id in seen:
            raise CorpusError(f"{what}: document id {doc.id!r} appears twice in this batch: drop one of them")
        seen.add(doc.id)
    return out


def copy_sqlite(src: Path, dst: Path) -> None:
    """Copy the SQLite database `src` to a new file `dst` with SQLite's online backup: consistent even while
    readers have `src` open (a plain file copy could miss pages still in its write-ahead log)."""
    source = sqlite3.connect(f"{Path(src).resolve().as_uri()}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(str(dst))
        try:
            source.backup(target)
        finally:
            target.close()
    except sqlite3.Error as e:
        raise IndexFormatError(f"cannot copy the document store {src}: {e}; rebuild the index") from None
    finally:
        source.close()


class SQLStore:
    """Documents + their passages in one SQL database; `namespace` prefixes table names so several
    indexes can share one PostgreSQL database. Thread-safe: one Engine, a short-lived connection per call."""

    def __init__(self, url: str | sa.URL, *, namespace: str = "", echo: bool = False) -> None:
        if not isinstance(url, (str, sa.URL)):
            raise ConfigError(f"SQLStore url must be a str like 'sqlite:///docs.sqlite', got {type(url).__name__}")
        if not isinstance(namespace, str) or (namespace and not _NAMESPACE.match(namespace)):
            raise ConfigError(
                f"namespace {namespace!r} is invalid: use 1-40 lowercase letters, digits or '_', starting with a letter"
            )
        try:
            self._engine: Engine = sa.create_engine(url, echo=echo, future=True)
        except sa.exc.ArgumentError as e:
            raise ConfigError(f"bad database URL {url!r} ({e}): use e.g. 'sqlite:///path/docs.sqlite'") from None
        except ImportError as e:
            if "psycopg" in str(e) or str(url).startswith("postgresql"):
                raise missing("postgres", "psycopg") from None
            raise
        if self._engine.dialect.name == "sqlite":
            sa.event.listen(self._engine, "connect", _sqlite_pragmas)
        self.namespace = namespace
        self._where = self._engine.url.render_as_string(hide_password=True) + (f" (namespace {namespace!r})" if namespace else "")
        self._md, self._docs, self._passages, self._meta, self._undo = _tables(f"{namespace}_" if namespace else "")
        try:
            self._open()
        except BaseException:
            self._engine.dispose()  # no half-open store keeps pooled connections alive
            raise

    # ------------------------------------------------------------------ schema

    def _open(self) -> None:
        try:
            with self._engine.begin() as conn:
                if sa.inspect(conn).has_table(self._meta.name):
                    row = conn.execute(sa.select(self._meta.c.value).where(self._meta.c.key == "schema_version")).first()
                    version = int(row[0]) if row else None
                    if version is not None and version > SCHEMA_VERSION:
                        raise IndexFormatError(
                            f"store {self._where} has schema version {version}, this adarag reads up to "
                            f"{SCHEMA_VERSION}: upgrade adarag, or rebuild the store with this version"
                        )
                    if version == SCHEMA_VERSION:
                        return
                self._md.create_all(conn)
                conn.execute(sa.insert(self._meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
        except sa.exc.OperationalError as e:
            raise IndexFormatError(f"cannot open store {self._where}: {e.orig}; check the URL, path and permissions") from None

    def _lock(self, conn: Connection) -> None:
        """Serialise writers (seq allocation) on PostgreSQL; SQLite already has one writer at a time."""
        if self._engine.dialect.name != "sqlite":
            conn.execute(sa.select(self._meta.c.key).where(self._meta.c.key == "schema_version").with_for_update())

    def _check_split(self, conn: Connection, split: SplitConfig | None) -> SplitConfig:
        row = conn.execute(sa.select(self._meta.c.value).where(self._meta.c.key == "split")).first()
        stored = SplitConfig(**json.loads(row[0])) if row else None
        if split is not None and not isinstance(split, SplitConfig):
            raise ConfigError(f"split must be an indexers.ingest.SplitConfig, got {type(split).__name__}")
        if stored is None:
            chosen = split or SplitConfig()
            conn.execute(sa.insert(self._meta).values(
                key="split", value=json.dumps({"max_words": chosen.max_words, "overlap": chosen.overlap})))
            return chosen
        if split is not None and split != stored:
            raise ConfigError(
                f"store {self._where} splits with {stored}, this call asked for {split}: "
                "pass the same split (or split=None), or build a new store"
            )
        return stored

    @property
    def split(self) -> SplitConfig | None:
        """The passage split this store uses (None until the first write)."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(self._meta.c.value).where(self._meta.c.key == "split")).first()
        return SplitConfig(**json.loads(row[0])) if row else None

    # ------------------------------------------------------------------ writes

    def _existing_hashes(self, conn: Connection, ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        d = self._docs.c
        for chunk in _chunks(ids):
            out.update((k, v) for k, v in conn.execute(sa.select(d.id, d.content_hash).where(d.id.in_(chunk))))
        return out

    def _next_seq(self, conn: Connection) -> int:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(self._docs.c.seq), -1))).scalar_one()) + 1

    def _insert(self, conn: Connection, docs: Sequence[tuple[Document, str]], split: SplitConfig, seq0: int | None) -> int:
        """Insert passages of `docs` (and the document rows when `seq0` is given); returns passages written."""
        if not docs:
            return 0
        if seq0 is not None:
            conn.execute(sa.insert(self._docs), [
                {"id": d.id, "title": d.title, "text": d.text, "metadata": d.metadata, "content_hash": h, "seq": seq0 + i}
                for i, (d, h) in enumerate(docs)
            ])
        rows = [
            {"id": p.id, "doc_id": p.doc_id, "ord": k, "title": p.title, "text": p.text,
             "start": p.start, "end": p.end, "content_hash": passage_hash(p)}
            for d, _ in docs for k, p in enumerate(split_passages(d, split.max_words, split.overlap))
        ]
        conn.execute(sa.insert(self._passages), rows)
        return len(rows)

    def add_documents(self, docs: Iterable[Document], split: SplitConfig | None = None) -> WriteSummary:
        """Add new documents and their passages in one transaction; any id already stored raises
        `CorpusError` and nothing is written. `split=None` uses the store's split (default on first write)."""
        batch = _doc_list(docs, "add_documents")
        hashed = [(d, content_hash(d)) for d in batch]
        with self._engine.begin() as conn:
            self._lock(conn)
            chosen = self._check_split(conn, split)
            clash = sorted(self._existing_hashes(conn, [d.id for d in batch]))
            if clash:
                raise CorpusError(
                    f"add_documents: {len(clash)} id(s) already in store {self._where}, e.g. {clash[:5]}; "
                    "nothing was written: use upsert_documents to replace them"
                )
            n = self._insert(conn, hashed, chosen, self._next_seq(conn))
            self._forget_generation(conn)
        return WriteSummary(added=tuple(d.id for d in batch), n_passages_written=n)

    def upsert_documents(self, docs: Iterable[Document], split: SplitConfig | None = None) -> WriteSummary:
        """Add new ids, replace changed ones (keeping their position), skip those whose content_hash is equal."""
        batch = _doc_list(docs, "upsert_documents")
        with self._engine.begin() as conn:
            self._lock(conn)
            chosen = self._check_split(conn, split)
            old = self._existing_hashes(conn, [d.id for d in batch])
            added: list[tuple[Document, str]] = []
            updated: list[tuple[Document, str]] = []
            unchanged: list[str] = []
            for d in batch:
                h = content_hash(d)
                if d.id not in old:
                    added.append((d, h))
                elif old[d.id] != h:
                    updated.append((d, h))
                else:
                    unchanged.append(d.id)
            removed: list[str] = []
            if updated:
                upd_ids = [d.id for d, _ in updated]
                old_pids = self._passage_ids_of(conn, upd_ids)
                self._delete_passages(conn, upd_ids)
                c = self._docs.c
                conn.execute(
                    sa.update(self._docs).where(c.id == sa.bindparam("b_id")).values(
                        title=sa.bindparam("b_title"), text=sa.bindparam("b_text"),
                        metadata=sa.bindparam("b_meta", type_=sa.JSON), content_hash=sa.bindparam("b_hash")),
                    [{"b_id": d.id, "b_title": d.title, "b_text": d.text, "b_meta": d.metadata, "b_hash": h}
                     for d, h in updated],
                )
                n = self._insert(conn, updated, chosen, None)
                new_pids = {p.id for d, _ in updated for p in split_passages(d, chosen.max_words, chosen.overlap)}
                removed = [p for p in old_pids if p not in new_pids]
            else:
                n = 0
            n += self._insert(conn, added, chosen, self._next_seq(conn))
            if added or updated:
                self._forget_generation(conn)
        return WriteSummary(tuple(d.id for d, _ in added), tuple(d.id for d, _ in updated), tuple(unchanged),
                            tuple(removed), n)

    def _passage_ids_of(self, conn: Connection, doc_ids: Sequence[str]) -> list[str]:
        p = self._passages.c
        out: list[str] = []
        for chunk in _chunks(doc_ids):
            out.extend(conn.execute(sa.select(p.id).where(p.doc_id.in_(chunk)).order_by(p.doc_id, p.ord)).scalars())
        return out

    def _delete_docs(self, conn: Connection, doc_ids: Sequence[str]) -> int:
        """Delete documents and their passages; returns how many documents there were."""
        self._delete_passages(conn, doc_ids)
        return sum(conn.execute(sa.delete(self._docs).where(self._docs.c.id.in_(chunk))).rowcount
                   for chunk in _chunks(doc_ids))

    def _delete_passages(self, conn: Connection, doc_ids: Sequence[str]) -> None:
        for chunk in _chunks(doc_ids):
            conn.execute(sa.delete(self._passages).where(self._passages.c.doc_id.in_(chunk)))

    def delete_documents(self, ids: Iterable[str]) -> int:
        """Delete documents and their passages; unknown ids are ignored. Returns the number of documents deleted."""
        wanted = list(dict.fromkeys(_id_list(ids, "delete_documents")))
        with self._engine.begin() as conn:
            deleted = self._delete_docs(conn, wanted)
            if deleted:
                self._forget_generation(conn)
        return deleted

    # ------------------------------------------------------------------ index writes (undo-logged)

    def _pre_images(self, conn: Connection, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored rows of `doc_ids` (documents with their passages), keyed by id, for the undo log."""
        d, p = self._docs.c, self._passages.c
        out: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(list(doc_ids)):
            for row in conn.execute(sa.select(self._docs).where(d.id.in_(chunk))):
                out[row.id] = {"doc": dict(row._mapping), "passages": []}
            for row in conn.execute(sa.select(self._passages).where(p.doc_id.in_(chunk)).order_by(p.doc_id, p.ord)):
                out[row.doc_id]["passages"].append(dict(row._mapping))
        return out

    def write(self, docs: Iterable[Document], delete: Iterable[str] = (), split: SplitConfig | None = None, *,
              generation: int | None = None) -> IndexWrite:
        """Upsert `docs` and delete the documents `delete` names, in one transaction, for an index write.

        With `generation`, the pre-image of every touched document is logged under it first, so `rollback`
        can undo the write until `commit_generation` says its manifest was published (kill -9 safe in place:
        no copy of the database). Unknown ids in `delete` are ignored."""
        batch = _doc_list(docs, "write")
        gone = list(dict.fromkeys(_id_list(delete, "delete")))
        with self._engine.begin() as conn:
            self._lock(conn)
            chosen = self._check_split(conn, split)
            pre = self._pre_images(conn, [d.id for d in batch] + gone)
            added: list[tuple[Document, str]] = []
            updated: list[tuple[Document, str]] = []
            unchanged: list[str] = []
            for doc in batch:
                h = content_hash(doc)
                old = pre.get(doc.id)
                if old is None:
                    added.append((doc, h))
                elif old["doc"]["content_hash"] != h:
                    updated.append((doc, h))
                else:
                    unchanged.append(doc.id)
            in_batch = {d.id for d in batch}
            gone = [i for i in gone if i in pre and i not in in_batch]
            if generation is not None:  # only what changes is logged: re-adding a corpus logs nothing
                self._log_undo(conn, generation, [d.id for d, _ in [*added, *updated]] + gone, pre)
            for doc, h in updated:
                seq = pre[doc.id]["doc"]["seq"]
                self._delete_passages(conn, [doc.id])
                conn.execute(sa.delete(self._docs).where(self._docs.c.id == doc.id))
                self._insert(conn, [(doc, h)], chosen, seq)
            self._insert(conn, added, chosen, self._next_seq(conn))
            self._delete_docs(conn, gone)
        changed = {d.id for d, _ in [*added, *updated]}
        new = tuple(p for doc in batch if doc.id in changed
                    for p in split_passages(doc, chosen.max_words, chosen.overlap))
        new_ids = {p.id for p in new}
        removed = tuple(Passage(r["id"], r["doc_id"], r["text"], r["title"], r["start"], r["end"])
                        for i in [*(d.id for d, _ in updated), *gone] for r in pre[i]["passages"])
        summary = WriteSummary(tuple(d.id for d, _ in added), tuple(d.id for d, _ in updated), tuple(unchanged),
                               tuple(p.id for p in removed if p.id not in new_ids), len(new))
        return IndexWrite(summary, new, removed, len(gone))

    def _has_undo(self, conn: Connection) -> bool:
        """The undo table is made by the first logged write (stores older than it open read-only unchanged)."""
        return sa.inspect(conn).has_table(self._undo.name)

    def _log_undo(self, conn: Connection, generation: int, doc_ids: Sequence[str],
                  pre: dict[str, dict[str, Any]]) -> None:
        if not doc_ids:
            return
        self._undo.create(conn, checkfirst=True)
        u = self._undo.c
        logged: set[str] = set()
        for chunk in _chunks(list(dict.fromkeys(doc_ids))):
            logged.update(conn.execute(sa.select(u.doc_id).where(u.generation == generation, u.doc_id.in_(chunk)))
                          .scalars())
        rows = [{"generation": generation, "doc_id": i, "pre": pre.get(i)}
                for i in dict.fromkeys(doc_ids) if i not in logged]
        if rows:
            conn.execute(sa.insert(self._undo), rows)

    def begin_generation(self, generation: int) -> None:
        """Mark an index write of `generation` as started (pending until committed or rolled back), even if it
        changes no document (a merge): a reader then tells a published-but-uncommitted write from a stale store."""
        with self._engine.begin() as conn:
            self._set_meta(conn, "pending", str(generation))

    def pending_generations(self) -> list[int]:
        """Generations begun or undo-logged and not yet committed: writes whose manifest may not be published."""
        with self._engine.connect() as conn:
            found = set()
            if self._has_undo(conn):
                found.update(conn.execute(sa.select(self._undo.c.generation).distinct()).scalars())
            row = conn.execute(sa.select(self._meta.c.value).where(self._meta.c.key == "pending")).first()
            if row:
                found.add(int(row[0]))
            return sorted(found)

    def rollback(self, generation: int) -> int:
        """Undo the writes logged under `generation` (restore every pre-image); returns documents restored."""
        u = self._undo.c
        with self._engine.begin() as conn:
            self._lock(conn)
            self._clear_pending(conn, generation, exact=True)
            if not self._has_undo(conn):
                return 0
            rows = list(conn.execute(sa.select(u.doc_id, u.pre).where(u.generation == generation)))
            self._delete_docs(conn, [r.doc_id for r in rows])
            docs = [r.pre["doc"] for r in rows if r.pre is not None]
            passages = [p for r in rows if r.pre is not None for p in r.pre["passages"]]
            if docs:
                conn.execute(sa.insert(self._docs), docs)
            if passages:
                conn.execute(sa.insert(self._passages), passages)
            conn.execute(sa.delete(self._undo).where(u.generation == generation))
        return len(rows)

    def commit_generation(self, generation: int) -> None:
        """Record that the index published `generation`: its undo log (and any older) is dropped."""
        with self._engine.begin() as conn:
            if self._has_undo(conn):
                conn.execute(sa.delete(self._undo).where(self._undo.c.generation <= generation))
            self._clear_pending(conn, generation, exact=False)
            self._set_meta(conn, "generation", str(generation))

    def _clear_pending(self, conn: Connection, generation: int, exact: bool) -> None:
        m = self._meta.c
        row = conn.execute(sa.select(m.value).where(m.key == "pending")).first()
        if row and (int(row[0]) == generation if exact else int(row[0]) <= generation):
            conn.execute(sa.delete(self._meta).where(m.key == "pending"))

    def generation(self) -> int | None:
        """The last index generation committed against this store (None before the first)."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(self._meta.c.value).where(self._meta.c.key == "generation")).first()
        return int(row[0]) if row else None

    def _forget_generation(self, conn: Connection) -> None:
        """A write outside an index's (add/upsert/delete_documents): no index generation matches the store now."""
        conn.execute(sa.delete(self._meta).where(self._meta.c.key == "generation"))

    def _set_meta(self, conn: Connection, key: str, value: str) -> None:
        m = self._meta.c
        if conn.execute(sa.update(self._meta).where(m.key == key).values(value=value)).rowcount == 0:
            conn.execute(sa.insert(self._meta).values(key=key, value=value))

    def pre_image_passages(self, ids: Sequence[str]) -> dict[str, Passage]:
        """Passages as they were before an unpublished write (from its undo log), by id: what a reader of the
        published generation must still see while a writer is between its SQL commit and its publish."""
        wanted = set(ids)
        out: dict[str, Passage] = {}
        with self._engine.connect() as conn:
            if not self._has_undo(conn):
                return out
            for (pre,) in conn.execute(sa.select(self._undo.c.pre).order_by(self._undo.c.generation.desc())):
                for r in (pre or {}).get("passages", []):
                    if r["id"] in wanted:
                        out[r["id"]] = Passage(r["id"], r["doc_id"], r["text"], r["title"], r["start"], r["end"])
        return out

    def passage_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """Stored content hash of each known passage id."""
        p = self._passages.c
        out: dict[str, str] = {}
        with self._engine.connect() as conn:
            for chunk in _chunks(list(dict.fromkeys(ids))):
                out.update((a, b) for a, b in conn.execute(sa.select(p.id, p.content_hash).where(p.id.in_(chunk))))
        return out

    def document_ids(self) -> list[str]:
        """Every stored document id, in insertion order."""
        with self._engine.connect() as conn:
            return list(conn.execute(sa.select(self._docs.c.id).order_by(self._docs.c.seq)).scalars())

    # ------------------------------------------------------------------ reads

    def get_document(self, doc_id: str) -> Document:
        """One document; `NotFoundError` if absent."""
        return self.get_documents([doc_id])[0]

    def get_documents(self, ids: Iterable[str], missing: Literal["raise", "skip"] = "raise") -> list[Document]:
        """Documents in the requested order. Unknown ids raise `NotFoundError` (a stale index should be loud),
        or are left out with `missing="skip"`."""
        wanted = _id_list(ids, "get_documents")
        d = self._docs.c
        found: dict[str, Document] = {}
        with self._engine.connect() as conn:
            for chunk in _chunks(list(dict.fromkeys(wanted))):
                for row in conn.execute(sa.select(d.id, d.text, d.title, d.metadata).where(d.id.in_(chunk))):
                    found[row.id] = Document(id=row.id, text=row.text, title=row.title, metadata=row.metadata)
        return self._ordered(wanted, found, missing, "document")

    def get_passages(self, ids: Iterable[str], missing: Literal["raise", "skip"] = "raise") -> list[Passage]:
        """Passages in the requested order (chunked IN queries); unknown ids as in `get_documents`."""
        wanted = _id_list(ids, "get_passages")
        found = {pid: passage for pid, (passage, _) in self.stored_passages(wanted).items()}
        return self._ordered(wanted, found, missing, "passage")

    def stored_passages(self, ids: Iterable[str]) -> dict[str, tuple[Passage, str]]:
        """passage id -> (passage, stored content hash) for the known ids, one chunked query: what an index
        reads to serve a hit and check it is the version its generation holds."""
        p = self._passages.c
        cols = (p.id, p.doc_id, p.text, p.title, p.start, p.end, p.content_hash)
        found: dict[str, tuple[Passage, str]] = {}
        with self._engine.connect() as conn:
            for chunk in _chunks(list(dict.fromkeys(_id_list(ids, "stored_passages")))):
                for row in conn.execute(sa.select(*cols).where(p.id.in_(chunk))):
                    found[row[0]] = (Passage(*row[:6]), row[6])
        return found

    def _ordered(self, wanted: list[str], found: dict[str, Any], missing: str, what: str) -> list[Any]:
        if missing not in ("raise", "skip"):
            raise ConfigError(f"missing must be 'raise' or 'skip', got {missing!r}")
        absent = [i for i in wanted if i not in found]
        if absent and missing == "raise":
            raise NotFoundError(
                f"{len(absent)} {what} id(s) not in store {self._where}, e.g. {absent[:5]}: an index built on "
                "another corpus? rebuild it, or pass missing='skip'"
            )
        return [found[i] for i in wanted if i in found]

    def count_documents(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(self._docs)).scalar_one())

    def count_passages(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(self._passages)).scalar_one())

    def _ordered_select(self, *cols: Any) -> sa.Select[Any]:
        p, d = self._passages.c, self._docs.c
        return (sa.select(*cols).select_from(self._passages.join(self._docs, p.doc_id == d.id))
                .order_by(d.seq, p.ord))

    def iter_passages(self, batch_size: int = 1000) -> Iterator[Passage]:
        """All passages in corpus order (document insertion order, then passage order), streamed from one snapshot."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        p = self._passages.c
        stmt = self._ordered_select(p.id, p.doc_id, p.text, p.title, p.start, p.end)
        with self._engine.connect() as conn:
            result = conn.execution_options(yield_per=batch_size).execute(stmt)
            for row in result:
                yield Passage(*row)

    def passage_ids(self) -> list[str]:
        """Passage ids in the order of `iter_passages`: row i of an index is passage_ids()[i]."""
        with self._engine.connect() as conn:
            return list(conn.execute(self._ordered_select(self._passages.c.id)).scalars())

    def fingerprint(self) -> str:
        """`ingest.corpus_fingerprint` over (passage id, passage hash) in corpus order."""
        p = self._passages.c
        with self._engine.connect() as conn:
            rows = conn.execution_options(yield_per=10_000).execute(self._ordered_select(p.id, p.content_hash))
            return corpus_fingerprint(rows)

    def _filtered_rows(self, filters: dict[str, Any] | None, reserved_key: str | None, *cols: Any,
                       passages: bool = False) -> list[Any]:
        """Rows of `cols` whose document matches `filters` (Haystack syntax, evaluated by the database), in
        corpus order; `ConfigError` if Haystack would raise on a document (e.g. `>` between a str and a number)."""
        verdict = compile_filters(filters, self._docs, self._engine.dialect.name, reserved_key=reserved_key)
        d = self._docs.c
        if passages:
            stmt = self._ordered_select(*cols, verdict.label("verdict"))
        else:
            stmt = sa.select(*cols, verdict.label("verdict")).order_by(d.seq)
        try:
            with self._engine.connect() as conn:
                rows = list(conn.execute(stmt.where(verdict != NO_MATCH)))
        except sa.exc.DataError as e:  # PostgreSQL: a stored ISO-shaped date that is no date (2023-02-29)
            raise ConfigError(f"filters {filters} compare a stored value that Haystack cannot compare: "
                              f"{e.orig}; fix that metadata value") from None
        bad = next((r for r in rows if r.verdict == RAISES), None)
        if bad is not None:
            raise ConfigError(f"filters {filters} compare a stored value that Haystack cannot compare (e.g. a str "
                              f"or list by '>' with a number, or a non-ISO date string): fix the filter or the "
                              f"metadata (first such row: {bad[0]!r})")
        return rows

    def filter_document_ids(self, filters: dict[str, Any] | None, *, reserved_key: str | None = None) -> list[str]:
        """Ids of the documents matching Haystack `filters` (all when empty), in insertion order; one query."""
        return [r[0] for r in self._filtered_rows(filters, reserved_key, self._docs.c.id)]

    def filter_passage_ids(self, filters: dict[str, Any] | None, *, reserved_key: str | None = None) -> list[str]:
        """Ids of the passages of documents matching `filters`, in corpus order (as `passage_ids()`); one query."""
        return [r[0] for r in self._filtered_rows(filters, reserved_key, self._passages.c.id, passages=True)]

    def filter_documents(self, filters: dict[str, Any] | None, *, reserved_key: str | None = None) -> list[Document]:
        """Documents matching `filters`, in insertion order; `reserved_key` as in `filters.compile_filters`."""
        d = self._docs.c
        rows = self._filtered_rows(filters, reserved_key, d.id, d.text, d.title, d.metadata)
        return [Document(id=r.id, text=r.text, title=r.title, metadata=r.metadata) for r in rows]

    # ------------------------------------------------------------------ lifecycle

    def drop(self) -> None:
        """Drop this namespace's tables (all stored content). The store is unusable afterwards."""
        with self._engine.begin() as conn:
            self._md.drop_all(conn)

    def close(self) -> None:
        """Close pooled connections (SQLite checkpoints its WAL into the main file)."""
        self._engine.dispose()

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLStore({self._where})"
