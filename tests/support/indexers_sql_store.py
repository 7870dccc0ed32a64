"""Helpers shared by tests/unit/indexers/test_sql_store.py and tests/integration/indexers/test_sql_store.py."""
from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
import pytest
import sqlalchemy as sa
from indexers.errors import ConfigError, CorpusError, IndexFormatError
from indexers.ingest import SplitConfig, content_hash
from indexers.errors import NotFoundError
from indexers.sql_store import SCHEMA_VERSION, SQLStore, WriteSummary
from indexers.types import Document, Passage


def _docs(n: int, words: int = 12, prefix: str = "d") -> list[Document]:
    return [Document(f"{prefix}{i}", " ".join(f"w{i}_{j}" for j in range(words)), title=f"title {i}",
                     metadata={"i": i, "tags": ["x", "y"]}) for i in range(n)]


SPLIT = SplitConfig(max_words=5, overlap=2)  # 12 words -> 4 passages per doc


class StoreContract:
    """Every SQLStore backend passes these. Subclasses provide `url`."""

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def open_store(self, url: str) -> Iterator[Callable[..., SQLStore]]:
        namespace = "t" + uuid.uuid4().hex[:12]
        opened: list[SQLStore] = []

        def _open(**kwargs: object) -> SQLStore:
            store = SQLStore(url, namespace=namespace, **kwargs)  # type: ignore[arg-type]
            opened.append(store)
            return store

        yield _open
        cleanup = SQLStore(url, namespace=namespace)
        cleanup.drop()
        cleanup.close()
        for store in opened:
            store.close()

    @pytest.fixture
    def store(self, open_store: Callable[..., SQLStore]) -> SQLStore:
        return open_store()

    # -------------------------------------------------------------- round trip

    def test_add_get_count_round_trip(self, store: SQLStore) -> None:
        docs = _docs(5) + [Document("short", "just three words", metadata={})]
        summary = store.add_documents(docs, split=SPLIT)
        assert summary.added == tuple(d.id for d in docs) and summary.n_passages_written == 21
        assert store.count_documents() == 6 and store.count_passages() == 21
        assert store.split == SPLIT
        assert store.get_documents(["d3", "short", "d0"]) == [docs[3], docs[5], docs[0]]
        assert store.get_document("d1") == docs[1]
        ps = store.get_passages(["d2#1", "short", "d2#0"])
        assert [p.id for p in ps] == ["d2#1", "short", "d2#0"]
        assert ps[1] == Passage("short", "short", "just three words", "", 0, 16)
        for p in store.iter_passages(batch_size=3):
            assert store.get_document(p.doc_id).text[p.start:p.end] == p.text
            assert p.title == store.get_document(p.doc_id).title

    def test_order_is_insertion_then_passage(self, store: SQLStore) -> None:
        store.add_documents([Document("zz", "a b c d e f g h")], split=SPLIT)
        store.add_documents([Document("aa", "one"), Document("mm", "x y z w v u")])
        expected = ["zz#0", "zz#1", "aa", "mm#0", "mm#1"]
        assert store.passage_ids() == expected
        assert [p.id for p in store.iter_passages(batch_size=2)] == expected

    def test_missing_ids(self, store: SQLStore) -> None:
        store.add_documents(_docs(2))
        with pytest.raises(NotFoundError, match="nope"):
            store.get_passages(["d0", "nope"])
        with pytest.raises(NotFoundError):
            store.get_document("nope")
        with pytest.raises(LookupError):
            store.get_documents(["nope"])
        assert [d.id for d in store.get_documents(["nope", "d1"], missing="skip")] == ["d1"]
        assert [p.id for p in store.get_passages(["d0", "x", "d0"], missing="skip")] == ["d0", "d0"]
        assert store.get_passages([]) == []

    def test_many_ids_are_chunked(self, store: SQLStore) -> None:
        docs = _docs(1300, words=3)
        store.add_documents(docs)
        ids = [d.id for d in docs][::-1]
        assert [p.id for p in store.get_passages(ids)] == ids
        assert store.delete_documents(ids[:1100]) == 1100
        assert store.count_passages() == 200

    # -------------------------------------------------------------- writes

    def test_upsert_summary(self, store: SQLStore) -> None:
        store.add_documents(_docs(3), split=SPLIT)
        before = store.passage_ids()
        changed = Document("d1", "now a short text", title="new")
        summary = store.upsert_documents([_docs(3)[0], changed, Document("d9", "brand new")])
        assert summary == WriteSummary(added=("d9",), updated=("d1",), unchanged=("d0",),
                                       removed_passages=("d1#0", "d1#1", "d1#2", "d1#3"), n_passages_written=2)
        assert store.get_document("d1") == changed
        # an updated document keeps its position in corpus order
        assert store.passage_ids() == before[:4] + ["d1"] + before[8:] + ["d9"]
        meta_only = Document("d0", _docs(1)[0].text, title="title 0", metadata={"i": 0})
        assert store.upsert_documents([meta_only]).updated == ("d0",)
        assert store.upsert_documents([meta_only]).unchanged == ("d0",)

    def test_index_write_reports_new_and_removed_passages(self, store: SQLStore) -> None:
        store.add_documents(_docs(3), split=SPLIT)
        old_d1 = store.get_passages([f"d1#{k}" for k in range(4)])
        changed = Document("d1", "now a short text", title="new")
        w = store.write([_docs(3)[0], changed, Document("d9", "brand new")], ["d2", "nope"])
        assert w.summary.added == ("d9",) and w.summary.updated == ("d1",) and w.summary.unchanged == ("d0",)
        assert [p.id for p in w.new_passages] == ["d1", "d9"]  # batch order
        assert [p.id for p in w.removed_passages] == [f"d1#{k}" for k in range(4)] + [f"d2#{k}" for k in range(4)]
        assert list(w.removed_passages[:4]) == old_d1  # with their stored text
        assert w.n_deleted == 1 and store.count_documents() == 3
        assert store.passage_ids() == [f"d0#{k}" for k in range(4)] + ["d1", "d9"]  # d1 keeps its position

    def test_rollback_restores_exactly_what_an_unpublished_write_changed(self, store: SQLStore) -> None:
        store.add_documents(_docs(3), split=SPLIT)
        before = (store.passage_ids(), store.get_documents(["d0", "d1", "d2"]),
                  store.get_passages(store.passage_ids()))
        w = store.write([Document("d1", "changed text", metadata={"k": [1, {"x": None}]}), Document("d7", "new")],
                        ["d0"], generation=5)
        assert w.summary.updated == ("d1",) and store.pending_generations() == [5]
        assert store.pre_image_passages(["d1#0", "d0#3", "d7"]) == {
            "d1#0": before[2][4], "d0#3": before[2][3]}  # what readers of the published generation still see
        assert store.rollback(5) == 3
        assert (store.passage_ids(), store.get_documents(["d0", "d1", "d2"]),
                store.get_passages(store.passage_ids())) == before
        assert store.get_documents(["d7"], missing="skip") == [] and store.pending_generations() == []

    def test_commit_generation_drops_the_undo_log(self, store: SQLStore) -> None:
        store.add_documents(_docs(2), split=SPLIT)
        assert store.generation() is None
        store.write([Document("d0", "changed")], generation=6)
        store.write([Document("d5", "more")], generation=6)  # a second batch of the same write
        store.commit_generation(6)
        assert store.pending_generations() == [] and store.generation() == 6
        assert store.get_document("d0").text == "changed" and store.count_documents() == 3
        store.write(_docs(2)[1:] + [Document("d0", "changed"), Document("d5", "more")], generation=7)
        assert store.pending_generations() == []  # nothing changed: nothing logged

    def test_delete_cascades_to_passages(self, store: SQLStore) -> None:
        store.add_documents(_docs(3), split=SPLIT)
        assert store.delete_documents(["d1", "unknown", "d1"]) == 1
        assert store.count_documents() == 2 and store.count_passages() == 8
        assert all(not pid.startswith("d1") for pid in store.passage_ids())
        assert store.get_passages(["d1#0"], missing="skip") == []
        store.add_documents([_docs(3)[1]])  # the id is free again
        assert store.count_documents() == 3

    def test_duplicate_id_in_add_leaves_store_unchanged(self, store: SQLStore) -> None:
        store.add_documents(_docs(2), split=SPLIT)
        fp, ids = store.fingerprint(), store.passage_ids()
        with pytest.raises(CorpusError, match="d1") as info:
            store.add_documents([Document("new1", "a"), Document("d1", "clash"), Document("new2", "b")])
        assert "upsert_documents" in str(info.value)
        with pytest.raises(CorpusError, match="twice"):
            store.add_documents([Document("x", "a"), Document("x", "b")])
        assert store.fingerprint() == fp and store.passage_ids() == ids and store.count_documents() == 2

    def test_bad_arguments(self, store: SQLStore) -> None:
        with pytest.raises(ConfigError, match="list"):
            store.add_documents("not docs")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="list"):
            store.add_documents(Document("a", "b"))  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="item #1"):
            store.upsert_documents([Document("a", "b"), {"id": "c", "text": "d"}])  # type: ignore[list-item]
        with pytest.raises(ConfigError, match="single string"):
            store.get_passages("d0")
        with pytest.raises(ConfigError):
            store.delete_documents([1, 2])  # type: ignore[list-item]
        with pytest.raises(CorpusError, match="reserved"):
            store.add_documents([Document("a#1", "b")])
        with pytest.raises(ConfigError):
            store.get_documents([], missing="ignore")  # type: ignore[arg-type]
        assert store.count_documents() == 0

    def test_split_is_fixed_per_store(self, store: SQLStore) -> None:
        store.add_documents(_docs(1), split=SPLIT)
        store.upsert_documents(_docs(2))  # None -> the stored split
        with pytest.raises(ConfigError, match="same split"):
            store.add_documents([Document("z", "z")], split=SplitConfig(100, 10))
        assert store.count_passages() == 8

    # -------------------------------------------------------------- fingerprint, persistence

    def test_fingerprint_content_and_order(self, open_store: Callable[..., SQLStore], url: str) -> None:
        a = open_store()
        a.add_documents(_docs(4), split=SPLIT)
        fp = a.fingerprint()
        assert fp == a.fingerprint() and len(fp) == 64
        a.upsert_documents([Document("d2", "changed text")])
        assert a.fingerprint() != fp
        a.upsert_documents([_docs(4)[2]])
        assert a.fingerprint() == fp  # same content, same position -> same fingerprint
        # same documents in another insertion order -> another corpus order -> another fingerprint
        other = SQLStore(url, namespace=a.namespace + "r")
        try:
            other.add_documents(_docs(4)[::-1], split=SPLIT)
            assert other.fingerprint() != fp
            assert sorted(other.passage_ids()) == sorted(a.passage_ids())
        finally:
            other.drop()
            other.close()

    def test_reopen_gives_same_content(self, open_store: Callable[..., SQLStore]) -> None:
        first = open_store()
        docs = _docs(3) + [Document("u", "ünïcödé \u2003 text 🙂", title="ü", metadata={"nested": {"a": [1, None]}})]
        first.add_documents(docs, split=SPLIT)
        fp, ids = first.fingerprint(), first.passage_ids()
        first.close()
        again = open_store()
        assert again.fingerprint() == fp and again.passage_ids() == ids
        assert again.get_documents([d.id for d in docs]) == docs
        assert again.split == SPLIT
        assert content_hash(again.get_document("u")) == content_hash(docs[-1])

    def test_newer_schema_is_refused(self, open_store: Callable[..., SQLStore], url: str) -> None:
        store = open_store()
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {store.namespace}_adarag_meta SET value = :v WHERE key = 'schema_version'"),
                         {"v": str(SCHEMA_VERSION + 1)})
        engine.dispose()
        with pytest.raises(IndexFormatError, match=f"schema version {SCHEMA_VERSION + 1}.*upgrade adarag"):
            SQLStore(url, namespace=store.namespace)
        with engine.begin() as conn:  # let the fixture clean up
            conn.execute(sa.text(f"UPDATE {store.namespace}_adarag_meta SET value = :v WHERE key = 'schema_version'"),
                         {"v": str(SCHEMA_VERSION)})
        engine.dispose()

    def test_namespaces_are_isolated(self, store: SQLStore, url: str) -> None:
        store.add_documents(_docs(2))
        other = SQLStore(url, namespace=store.namespace + "b")
        try:
            assert other.count_documents() == 0
            other.add_documents(_docs(1))  # same ids, other namespace
            assert store.count_documents() == 2
        finally:
            other.drop()
            other.close()

    def test_concurrent_readers(self, store: SQLStore) -> None:
        store.add_documents(_docs(50, words=3))
        errors: list[BaseException] = []

        def read() -> None:
            try:
                for _ in range(20):
                    assert len(store.get_passages([f"d{i}" for i in range(50)])) == 50
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=read) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
