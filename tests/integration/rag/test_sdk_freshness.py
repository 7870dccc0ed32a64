"""An open RAG sees what another writer publishes (issue #16, repro 7): it reloads, or says it is stale."""
import shutil

import pytest

from indexers.embedders import HashEmbedder
from indexers.index import build_index
from indexers.types import Document
from rag.sdk import RAG


@pytest.fixture
def root(tmp_path, hash_index):
    root = tmp_path / "index"
    shutil.copytree(hash_index, root)
    return root


def _add_elsewhere(root, ids):
    """What another process's `adarag index NEW --out INDEX` does to the folder."""
    docs = [Document(id=i, title=f"Zyzzyva {i}", text=f"zyzzyva quokka marmot {i}") for i in ids]
    build_index(docs, root, embedder=HashEmbedder(64), progress=False)


def test_another_writers_add_is_served_without_a_restart(root):
    with RAG.open(root) as rag:
        g = rag.generation
        assert rag.get_document("new0") is None
        _add_elsewhere(root, ["new0", "new1"])
        assert rag.stale
        assert rag.get_document("new0") is not None  # the call reloaded the newer generation first
        assert rag.generation == g + 1 and not rag.stale
        hits = rag.search("zyzzyva quokka marmot", store="bm25", k=2).hits
        assert {h.doc_id for h in hits} == {"new0", "new1"}


def test_without_auto_reload_it_reports_stale_until_reload(root):
    with RAG.open(root, auto_reload=False) as rag:
        _add_elsewhere(root, ["new0"])
        assert rag.stale and rag.get_document("new0") is None  # still its own, consistent generation
        assert rag.reload() is True and not rag.stale and rag.get_document("new0") is not None
        assert rag.reload() is False


def test_an_unloadable_new_generation_keeps_the_old_one_serving(root):
    with RAG.open(root) as rag:
        before = rag.search("Shirley Temple", store="bm25", k=3).hits
        (root / "manifest.json").write_text("{")  # a newer manifest that cannot be read
        assert rag.stale
        assert rag.search("Shirley Temple", store="bm25", k=3).hits == before
        assert "could not be loaded" in rag.reload_error
