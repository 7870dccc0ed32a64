import json

import pytest

from indexers.dense import DenseParams
from indexers.embedders import HashEmbedder
from indexers.errors import ConfigError, CorpusError, IndexFormatError
from indexers.index import BuildParams, build_index, open_index
from indexers.artifact import manifest_checksum
from indexers.index_dir import read_manifest
from indexers.ingest import read_corpus
from indexers.types import Document
from retrievers.search import Retriever


def _docs(n, prefix="d"):
    return [Document(id=f"{prefix}{i}", title=f"Title {i}", text=f"document number {i} about topic{i % 7}")
            for i in range(n)]


def _seg(root, k=0):
    """The k-th segment folder of the index at `root`."""
    return root / read_manifest(root).segments[k]["name"]


def _search(ix, query, store="bm25", k=10):
    return [h.id for h in Retriever(ix).search(query, store, k)]


def _edit_manifest(root, edit):
    """Change manifest.json as a tool would that knows the format (re-signs it), to test what is inside."""
    m = json.loads((root / "manifest.json").read_text())
    edit(m)
    m["checksum"] = manifest_checksum(m)
    (root / "manifest.json").write_text(json.dumps(m))


def _build(docs, root, **kw):
    return build_index(docs, root, BuildParams(stores=("bm25", "dense"), dense=DenseParams(embedder="hash", use_gpu=False)),
                       embedder=HashEmbedder(64), progress=False, **kw)


def test_adding_documents_is_incremental(tmp_path):
    root = tmp_path / "ix"
    first = _build(_docs(20), root)
    assert (first.added, first.embedded) == (20, 20)
    seg0 = _seg(root)
    before = {p.relative_to(seg0): p.read_bytes() for p in seg0.rglob("*") if p.is_file()}
    changed = Document(id="d3", title="Title 3", text="completely new words here")
    rep = _build([changed] + _docs(2, prefix="new"), root)
    assert (rep.added, rep.updated, rep.embedded) == (2, 1, 3)  # only new/changed passages are embedded
    # a new segment holds them; the old one is never rewritten, its replaced row is marked deleted
    assert [(s["n_rows"], s["n_deleted"]) for s in rep.manifest.segments] == [(20, 1), (3, 0)]
    assert {p.relative_to(seg0): p.read_bytes() for p in seg0.rglob("*")
            if p.is_file() and not p.relative_to(seg0).parts[0].startswith("del-")} == before
    with open_index(root) as ix:
        assert ix.manifest.n_docs == 22 and ix.manifest.n_passages == 22
        assert ix.store.get_passages(["d3"])[0].text == "completely new words here"
        assert _search(ix, "completely new words", k=1) == ["d3"]
        assert _search(ix, "topic3", k=5) == ["d10", "d17"]  # the old d3 is gone


def test_delete_removes_documents_from_every_store_in_one_step(tmp_path):
    root = tmp_path / "ix"
    _build(_docs(10), root)
    rep = _build([], root, delete=["d3", "d7", "no-such-doc"])
    assert (rep.deleted, rep.added, rep.embedded) == (2, 0, 0)
    assert [(s["n_rows"], s["n_deleted"]) for s in rep.manifest.segments] == [(10, 2)]
    with open_index(root) as ix:
        live = ix.ids[ix.live_rows()].tolist()
        assert ix.manifest.n_docs == 8 and "d3" not in live and "d7" not in live and len(live) == 8
        assert _search(ix, "topic3") == []  # only d3 had this term
        assert "d3" not in _search(ix, "document number 3 topic3", "dense", 10)
        assert len(_search(ix, "document", "dense", 100)) == 8
    with pytest.raises(ConfigError, match="list of document ids"):
        _build([], root, delete="d1")
    with pytest.raises(CorpusError):  # deleting everything would leave an empty index: refused, index kept
        _build([], root, delete=[f"d{i}" for i in range(10)])
    with open_index(root) as ix:
        assert ix.manifest.n_docs == 8 and ix.store.count_documents() == 8


def test_rebuild_replaces_the_corpus(tmp_path):
    root = tmp_path / "ix"
    _build(_docs(10), root)
    _build(_docs(3, prefix="x"), root, rebuild=True)
    with open_index(root) as ix:
        assert sorted(ix.ids.tolist()) == ["x0", "x1", "x2"]


class _Boom(HashEmbedder):
    def embed_passages(self, texts, batch_size=64, progress=False):
        raise RuntimeError("killed mid-build")


def test_failed_build_keeps_the_previous_index(tmp_path):
    root = tmp_path / "ix"
    _build(_docs(5), root)
    before = json.loads((root / "manifest.json").read_text())
    with pytest.raises(RuntimeError, match="killed"):
        build_index(_docs(3, prefix="n"), root, embedder=_Boom(64), progress=False)
    assert json.loads((root / "manifest.json").read_text()) == before
    assert sorted(p.name for p in root.iterdir()) == ["docs-000001.sqlite", "gen-000001", "manifest.json",
                                                      "seg-000001-000", "write.lock"]
    with open_index(root) as ix:
        assert ix.manifest.n_docs == 5 and ix.store.count_documents() == 5  # the SQL changes were rolled back


def test_bad_corpora_write_nothing(tmp_path):
    root = tmp_path / "ix"
    with pytest.raises(CorpusError):
        _build([], root)
    assert not root.exists() and not list(tmp_path.iterdir())
    _build(_docs(3), root)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
    with pytest.raises(CorpusError, match="a"):
        _build(read_corpus([bad]), root)
    with open_index(root) as ix:
        assert ix.manifest.n_docs == 3


def test_corrupt_index_file_is_refused(tmp_path):
    root = tmp_path / "ix"
    _build(_docs(5), root)
    p = next((_seg(root) / "bm25").glob("*.npy"))
    good = p.read_bytes()
    p.write_bytes(good[:-4] + bytes(b ^ 0xFF for b in good[-4:]))
    with pytest.raises(IndexFormatError, match="checksum"):
        open_index(root)
    p.write_bytes(good)
    open_index(root).close()
    (root / "docs-000001.sqlite").unlink()
    with pytest.raises(IndexFormatError, match="missing docs-000001.sqlite"):
        open_index(root, verify=True)
    assert not (root / "docs-000001.sqlite").exists()  # opening never creates one


def test_unknown_store_is_a_config_error():
    with pytest.raises(ConfigError, match="valid stores"):
        BuildParams(stores=("bm25", "ngramz"))


def test_external_sql_store_out_of_sync_is_detected(tmp_path):
    url = f"sqlite:///{tmp_path / 'external.sqlite'}"
    root = tmp_path / "ix"
    build_index(_docs(4), root, BuildParams(stores=("bm25", "dense"), sql_url=url,
                                            dense=DenseParams(embedder="hash", use_gpu=False)),
                embedder=HashEmbedder(64), progress=False)
    assert not list(root.rglob("docs*.sqlite"))
    open_index(root).close()
    from indexers.sql_store import SQLStore

    with SQLStore(url) as s:
        s.upsert_documents([Document(id="d0", text="changed behind adarag's back")])
    with pytest.raises(IndexFormatError, match="no longer matches"):
        open_index(root)


def test_every_released_format_still_loads():
    """tests/data keeps one tiny index per released format version (built by adarag 0.1.0, format 1)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "data" / "index-v1"
    with open_index(root) as ix:
        assert ix.manifest.version == 1 and ix.manifest.n_docs == 3
        assert sorted(ix.ids.tolist()) == ["berlin", "long#0", "long#1", "long#2", "long#3", "paris"]
        rows, scores = ix.bm25.search(["capit", "germani"], 1)
        assert ix.ids[rows[0]] == "berlin"
        long0 = ix.store.get_passages(["long#3"])[0]
        assert long0.doc_id == "long" and long0.text.endswith("tail about rivers")
    v2 = root.parent / "index-v2"  # built by adarag at d1023bd (format 2: one gen-NNNNNN folder)
    with open_index(v2) as ix:
        assert ix.manifest.version == 2 and len(ix.segments) == 1
        assert _search(ix, "capital of Germany", k=1) == ["berlin"]


@pytest.mark.parametrize("version", [1, 2])
def test_the_next_write_converts_an_old_format_to_segments(tmp_path, version):
    import shutil
    from pathlib import Path

    root = tmp_path / "ix"
    shutil.copytree(Path(__file__).resolve().parents[2] / "data" / f"index-v{version}", root)
    rep = build_index([Document(id="oslo", title="Oslo", text="Oslo is the capital of Norway.")], root,
                      progress=False)
    assert rep.manifest.version == 3 and rep.added == 1 and len(rep.manifest.segments) == 1
    with open_index(root) as ix:
        assert _search(ix, "capital of Norway", k=1) == ["oslo"]
        assert _search(ix, "capital of Germany", k=1) == ["berlin"]


def test_index_built_with_another_analyzer_is_refused(tmp_path):
    root = tmp_path / "ix"
    _build(_docs(3), root)
    _edit_manifest(root, lambda m: m["params"].update(analyzer="w+lower|stop=none|stem=none|v0"))
    with pytest.raises(IndexFormatError, match="analyzer.*--rebuild"):
        open_index(root)


