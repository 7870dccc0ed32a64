"""indexers/haystack_store.py: Haystack's own DocumentStore conformance suite on SQLite, and on PostgreSQL when
ADARAG_TEST_PG_URL is set; plus serialisation, field round trips, policies and a Pipeline using the store."""
from __future__ import annotations

import importlib
import inspect
import logging
import sys
from pathlib import Path

import pytest

pytest.importorskip("haystack", reason="the [haystack] extra is not installed")

from haystack import Document, Pipeline
from haystack.components.writers import DocumentWriter
from haystack.dataclasses import ByteStream, SparseEmbedding
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DocumentStore, DuplicatePolicy
from haystack.errors import FilterError
from haystack.utils import Secret

from indexers.errors import ConfigError, CorpusError, MissingDependencyError
from indexers.haystack_store import RESERVED_META_KEY, SQLDocumentStore
from tests.support.indexers_haystack_store import HaystackConformance
from tests.support.indexers_haystack_store import store, url  # noqa: F401 (fixtures)


class TestSQLiteConformance(HaystackConformance):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'haystack.sqlite'}"


# ---------------------------------------------------------------------------------------------- adapter


def test_matches_the_protocol_signatures() -> None:
    # DocumentStore is not runtime_checkable: compare each protocol method's parameters and defaults instead
    for name in ("to_dict", "from_dict", "count_documents", "filter_documents", "write_documents", "delete_documents"):
        ours, theirs = inspect.signature(getattr(SQLDocumentStore, name)), inspect.signature(getattr(DocumentStore, name))
        assert [(p.name, p.default) for p in ours.parameters.values()] == \
               [(p.name, p.default) for p in theirs.parameters.values()], name


def test_init_is_cheap_and_errors_come_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there.sqlite"
    SQLDocumentStore(f"sqlite:///{path}")
    assert not path.exists() and not path.parent.exists()
    lazy = SQLDocumentStore("not a url")
    with pytest.raises(ConfigError, match="URL"):
        lazy.count_documents()
    with pytest.raises(ConfigError):
        SQLDocumentStore(tmp_path)  # type: ignore[arg-type]


def test_to_dict_from_dict_round_trip(store: SQLDocumentStore, url: str) -> None:
    store.write_documents([Document(content="persisted")])
    data = store.to_dict()
    assert data == {"type": "indexers.haystack_store.SQLDocumentStore",
                    "init_parameters": {"url": url, "namespace": "unit"}}
    again = SQLDocumentStore.from_dict(data)
    assert (again.url, again.namespace) == (url, "unit")
    assert [d.content for d in again.filter_documents()] == ["persisted"]
    again.close()


def test_secret_url_is_serialised_by_reference(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADARAG_TEST_HS_URL", url)
    store = SQLDocumentStore(Secret.from_env_var("ADARAG_TEST_HS_URL"), namespace="sec")
    data = store.to_dict()
    assert url not in repr(data)
    assert data["init_parameters"]["url"]["type"] == "env_var"
    again = SQLDocumentStore.from_dict(data)
    again.write_documents([Document(content="via secret")])
    assert store.count_documents() == 1
    store.close()
    again.close()


def test_to_dict_warns_about_a_password_in_the_url(caplog: pytest.LogCaptureFixture) -> None:
    store = SQLDocumentStore("postgresql+psycopg://u:hunter2@localhost/db")
    with caplog.at_level(logging.WARNING, logger="indexers.haystack_store"):
        store.to_dict()
    assert "Secret.from_env_var" in caplog.text
    assert "hunter2" not in repr(store)


def test_haystack_only_fields_round_trip_and_score_is_dropped(store: SQLDocumentStore) -> None:
    docs = [
        Document(id="emb", content="with embedding", embedding=[0.1, -2.5, 1e-30], meta={"k": [1, {"a": None}]}),
        Document(id="sparse", content="sparse", sparse_embedding=SparseEmbedding(indices=[0, 7], values=[0.5, 1.5])),
        Document(id="blob", blob=ByteStream(data=b"\x00\xffpdf", mime_type="application/pdf", meta={"p": 1})),
        Document(id="empty", content=""),
    ]
    assert store.write_documents(docs) == 4
    assert store.filter_documents() == docs
    assert store.filter_documents()[2].content is None and store.filter_documents()[3].content == ""
    store.write_documents([Document(id="scored", content="s", score=0.9)])
    assert store.filter_documents({"field": "id", "operator": "==", "value": "scored"})[0].score is None


def test_our_store_sees_text_title_and_metadata(store: SQLDocumentStore) -> None:
    store.write_documents([Document(id="d1", content="Paris is in France.", meta={"title": "Paris", "year": 2024}),
                           Document(id="d2", content="no title", meta={"title": 7})])
    d1, d2 = store.store.get_documents(["d1", "d2"])
    assert (d1.text, d1.title, d1.metadata) == ("Paris is in France.", "Paris", {"title": "Paris", "year": 2024})
    assert d2.title == "" and d2.metadata == {"title": 7}  # a non-str title stays in meta only
    assert [p.doc_id for p in store.store.iter_passages()] == ["d1", "d2"]  # passages exist for our retrievers


def test_bad_ids_and_reserved_meta_key_fail_clearly_and_write_nothing(store: SQLDocumentStore) -> None:
    with pytest.raises(CorpusError, match="'#'"):
        store.write_documents([Document(id="ok", content="fine"), Document(id="a#1", content="x")])
    with pytest.raises(CorpusError, match="NUL"):
        store.write_documents([Document(id="nul", content="bad\x00text")])
    with pytest.raises(CorpusError, match=RESERVED_META_KEY):
        store.write_documents([Document(id="r", content="x", meta={RESERVED_META_KEY: 1})])
    with pytest.raises(ValueError, match="policy"):
        store.write_documents([Document(content="x")], policy="skip")  # type: ignore[arg-type]
    assert store.count_documents() == 0


def test_duplicates_inside_one_batch_follow_the_policy(store: SQLDocumentStore) -> None:
    a1, a2 = Document(id="a", content="one"), Document(id="a", content="two")
    with pytest.raises(DuplicateDocumentError):
        store.write_documents([a1, a2], policy=DuplicatePolicy.FAIL)
    assert store.count_documents() == 0
    assert store.write_documents([a1, a2], policy=DuplicatePolicy.SKIP) == 1
    assert [d.content for d in store.filter_documents()] == ["one"]
    assert store.write_documents([a2, Document(id="b", content="b"), a1], policy=DuplicatePolicy.OVERWRITE) == 3
    assert [(d.id, d.content) for d in store.filter_documents()] == [("a", "one"), ("b", "b")]  # last copy wins


def test_skip_counts_only_new_documents(store: SQLDocumentStore) -> None:
    store.write_documents([Document(id="x", content="x")])
    assert store.write_documents([Document(id="x", content="changed"), Document(id="y", content="y")],
                                 policy=DuplicatePolicy.SKIP) == 1
    assert [(d.id, d.content) for d in store.filter_documents()] == [("x", "x"), ("y", "y")]


def test_malformed_filters_raise_even_on_an_empty_store(store: SQLDocumentStore) -> None:
    for bad in ({"operator": "AND"}, {"conditions": []}, {"field": "meta.a", "operator": "=="},
                {"field": "meta.a", "operator": "~", "value": 1}, {"operator": "XOR", "conditions": []},
                {"operator": "AND", "conditions": [{"field": "meta.a", "value": 1}]}, {"operator": "OR", "conditions": 3}):
        with pytest.raises(FilterError):
            store.filter_documents(bad)
    with pytest.raises(FilterError):
        store.delete_by_filter({})


def test_writer_component_in_a_pipeline(store: SQLDocumentStore) -> None:
    pipe = Pipeline()
    pipe.add_component("writer", DocumentWriter(document_store=store, policy=DuplicatePolicy.SKIP))
    docs = [Document(content="Berlin is the capital of Germany.", meta={"title": "Berlin"}),
            Document(content="Rome is the capital of Italy.", meta={"title": "Rome"})]
    assert pipe.run({"writer": {"documents": docs}}) == {"writer": {"documents_written": 2}}
    assert pipe.run({"writer": {"documents": docs}}) == {"writer": {"documents_written": 0}}

    # YAML round trip rebuilds the store from to_dict; haystack 3.x only builds classes from allowed modules
    loaded = Pipeline.loads(pipe.dumps(), allowed_modules=["indexers.haystack_store"])
    restored = loaded.get_component("writer").document_store
    assert isinstance(restored, SQLDocumentStore) and restored.namespace == "unit"
    got = restored.filter_documents({"field": "meta.title", "operator": "==", "value": "Rome"})
    assert [d.content for d in got] == ["Rome is the capital of Italy."]
    restored.close()


def test_missing_haystack_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "haystack", None)  # makes `import haystack...` raise ImportError
    monkeypatch.delitem(sys.modules, "indexers.haystack_store")
    with pytest.raises(MissingDependencyError, match=r"adarag\[haystack\]"):
        importlib.import_module("indexers.haystack_store")
