"""Segmented indexes (format 3): any sequence of adds, updates, deletes and merges searches exactly like a
fresh one-segment build of the live documents, for every store; writes are O(what changed)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from indexers.dense import DenseParams
from indexers.embedders import HashEmbedder
from indexers.index import BuildParams, build_index, open_index, optimize
from indexers.ngram import NgramParams
from tests.support.data import TOKENIZER
from indexers.index_dir import read_manifest
from indexers.types import Document
from retrievers.search import Retriever

_WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi".split()
_EMB = HashEmbedder(32)
_QUERIES = ["alpha beta", "gamma", "delta epsilon zeta", "pi omicron xi nu", "kappa kappa lambda", "unseenword"]


def _params(stores, cap=6, max_segments=3):
    return BuildParams(stores=stores, passage_words=8, passage_overlap=2, segment_passages=cap,
                       max_segments=max_segments, dense=DenseParams(embedder="hash", use_gpu=False),
                       ngram=NgramParams(tokenizer=TOKENIZER))


def _doc(i, version, rng):
    n = int(rng.integers(1, 20))  # up to 20 words: some documents split into several passages
    words = " ".join(_WORDS[j] for j in rng.integers(0, len(_WORDS), n))
    return Document(id=f"d{i}", title=f"t{i % 3}", text=f"{words} v{version}")


def _ranking(root, stores):
    """Per store and query: (passage ids, scores) of the top 10, plus the live documents in row order."""
    with open_index(root) as ix:
        ix.encoders._embedder = _EMB
        r = Retriever(ix)
        out = {(s, q): [(h.id, h.score) for h in r.search(q, s, 10)] for s in stores for q in _QUERIES}
        live = ix.ids[ix.live_rows()].tolist()
        docs = ix.store.get_documents(list(dict.fromkeys(p.split("#")[0] for p in live)))
        return out, docs


def _fresh(tmp_path, docs, stores):
    root = tmp_path / f"fresh{np.random.default_rng().integers(1 << 30)}"
    build_index(docs, root, _params(stores, cap=10_000), embedder=_EMB, progress=False)
    return root


@pytest.mark.parametrize("stores", [("bm25", "dense"), ("bm25", "ngram")])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), ops=st.lists(st.sampled_from(["add", "update", "delete", "optimize"]),
                                                    min_size=1, max_size=5))
def test_segmented_index_searches_like_a_fresh_build(tmp_path_factory, stores, seed, ops):
    tmp_path = tmp_path_factory.mktemp("seg")
    rng = np.random.default_rng(seed)
    root, n, version = tmp_path / "ix", 12, 0
    build_index([_doc(i, 0, rng) for i in range(n)], root, _params(stores), embedder=_EMB, progress=False)
    alive = set(range(n))
    for op in ops:
        version += 1
        if op == "add":
            build_index([_doc(i, version, rng) for i in range(n, n + 5)], root, embedder=_EMB, progress=False)
            alive |= set(range(n, n + 5))
            n += 5
        elif op == "update" and alive:
            pick = rng.choice(sorted(alive), size=min(3, len(alive)), replace=False)
            build_index([_doc(int(i), version, rng) for i in pick], root, embedder=_EMB, progress=False)
        elif op == "delete" and len(alive) > 3:
            pick = [int(i) for i in rng.choice(sorted(alive), size=3, replace=False)]
            build_index([], root, delete=[f"d{i}" for i in pick], embedder=_EMB, progress=False)
            alive -= set(pick)
        elif op == "optimize":
            optimize(root, embedder=_EMB, progress=False)
    got, docs = _ranking(root, stores)
    assert sorted(d.id for d in docs) == sorted(f"d{i}" for i in alive)
    want, _ = _ranking(_fresh(tmp_path, docs, stores), stores)
    for key in want:
        assert [i for i, _ in got[key]] == [i for i, _ in want[key]], key
        if key[0] != "dense":  # BM25 and n-gram scores: bit for bit; dense: float32 dot products, same rows
            assert [s for _, s in got[key]] == [s for _, s in want[key]], key


def test_an_add_writes_one_new_segment_and_a_delete_only_a_deletion_folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "ix"
    build_index([_doc(i, 0, rng) for i in range(30)], root, _params(("bm25",), cap=1000), progress=False)
    seg0 = root / read_manifest(root).segments[0]["name"]
    files = {p: p.stat().st_mtime_ns for p in seg0.rglob("*") if p.is_file()}
    rep = build_index([_doc(i, 1, rng) for i in range(30, 33)], root, progress=False)
    assert [(s["n_rows"], s["n_deleted"]) for s in rep.manifest.segments][-1][1] == 0
    rep = build_index([], root, delete=["d1", "d2"], progress=False)
    m = rep.manifest
    assert m.segments[0]["deleted"] == f"del-{m.generation:06d}" and m.segments[0]["n_deleted"] >= 2
    assert {p: p.stat().st_mtime_ns for p in seg0.rglob("*") if p.is_file() and "del-" not in str(p)} == files


def test_the_merge_policy_bounds_the_segment_count_within_the_cap(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "ix"
    build_index([_doc(0, 0, rng)], root, _params(("bm25",), cap=50, max_segments=3), progress=False)
    for i in range(1, 12):
        rep = build_index([_doc(i, 0, rng)], root, progress=False)
        assert len(rep.manifest.segments) <= 3
    assert rep.manifest.n_passages == sum(s["n_rows"] - s["n_deleted"] for s in rep.manifest.segments)
    rep = optimize(root, progress=False)
    assert len(rep.manifest.segments) == 1 and rep.manifest.segments[0]["n_deleted"] == 0


def test_a_mostly_deleted_segment_is_rewritten(tmp_path):
    rng = np.random.default_rng(2)
    root = tmp_path / "ix"
    build_index([_doc(i, 0, rng) for i in range(10)], root, _params(("bm25",), cap=1000), progress=False)
    rep = build_index([], root, delete=[f"d{i}" for i in range(7)], progress=False)
    assert [s["n_deleted"] for s in rep.manifest.segments] == [0] and rep.manifest.n_docs == 3
