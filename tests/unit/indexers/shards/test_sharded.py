"""A sharded index served in-process answers exactly like one index over the same writes (ids and scores)."""
from __future__ import annotations

import pytest

from indexers.errors import ConfigError, CorpusError, IndexFormatError
from indexers.index import build_index
from indexers.shards import LocalExecutor, build_sharded, open_sharded, read_shards, shard_of
from tests.support.shard_exactness import EMBEDDER, PARAMS, check_exact, corpus


@pytest.mark.parametrize("n_shards", [1, 2, 4])
def test_in_process_shards_equal_one_index_after_adds_and_deletes(tmp_path, n_shards):
    check_exact(tmp_path, n_shards, LocalExecutor())


def test_documents_route_by_a_stable_hash(tmp_path):
    docs = corpus(60)
    build_sharded(docs, tmp_path / "s", 3, PARAMS, embedder=EMBEDDER)
    m = read_shards(tmp_path / "s")
    assert m.n_docs == len(docs) and [e.name for e in m.shards] == ["shard-000", "shard-001", "shard-002"]
    assert shard_of("d0001", 3) == shard_of("d0001", 3) and len({shard_of(d.id, 3) for d in docs}) == 3
    with open_sharded(tmp_path / "s") as sh:
        for d in docs[:10]:
            assert sh.store.get_documents([d.id])[0] == d


def test_a_failed_write_leaves_the_previous_generation_loadable(tmp_path, monkeypatch):
    from indexers.shards import builder

    docs = corpus(80)
    build_sharded(docs[:40], tmp_path / "s", 2, PARAMS, embedder=EMBEDDER)
    before = read_shards(tmp_path / "s")
    real = builder.ShardBuilder.build
    calls = []

    def dies_on_second(self, shard):  # the first shard is written, then the write dies
        calls.append(shard)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, shard)

    monkeypatch.setattr(builder.ShardBuilder, "build", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        build_sharded(docs[40:], tmp_path / "s", embedder=EMBEDDER)
    monkeypatch.undo()
    assert read_shards(tmp_path / "s") == before
    with open_sharded(tmp_path / "s") as sh:
        assert len(sh.live_rows()) == before.n_passages
    rep = build_sharded(docs[40:], tmp_path / "s", embedder=EMBEDDER)  # the next writer finishes the job
    assert rep.manifest.n_docs == len(docs) and rep.manifest.generation == before.generation + 1
    names = {p.name for p in (tmp_path / "s").iterdir()}
    assert names <= {"shards.json", "write.lock", rep.manifest.state, before.state} | \
        {e.dir for e in rep.manifest.shards} | {e.dir for e in before.shards}


def test_bad_use_gets_a_clear_error(tmp_path):
    docs = corpus(20)
    with pytest.raises(ConfigError, match="--shards N"):
        build_sharded(docs, tmp_path / "new", None, PARAMS, embedder=EMBEDDER)
    build_index(docs, tmp_path / "plain", PARAMS, embedder=EMBEDDER, progress=False)
    with pytest.raises(ConfigError, match="unsharded"):
        build_sharded(docs, tmp_path / "plain", 2, PARAMS, embedder=EMBEDDER)
    build_sharded(docs, tmp_path / "s", 2, PARAMS, embedder=EMBEDDER)
    with pytest.raises(ConfigError, match="--rebuild"):
        build_sharded(docs, tmp_path / "s", 3, embedder=EMBEDDER)
    with pytest.raises(CorpusError, match="no passages"):
        build_sharded([], tmp_path / "s", embedder=EMBEDDER, delete=[d.id for d in docs])
    with pytest.raises(IndexFormatError, match="not a sharded"):
        open_sharded(tmp_path / "plain")
    (tmp_path / "s" / "shards.json").write_text("{}")
    with pytest.raises(IndexFormatError, match="rebuild"):
        open_sharded(tmp_path / "s")


def test_a_write_streams_its_documents_and_keeps_no_routed_copy(tmp_path):
    """Documents are routed into per-shard files as they stream in (a one-shot generator is enough) and the
    builders read those; the published state holds no copy of them."""
    docs = corpus(60)
    rep = build_sharded((d for d in docs), tmp_path / "s", 3, PARAMS, embedder=EMBEDDER)
    assert rep.manifest.n_docs == len({d.id for d in docs})
    state = tmp_path / "s" / rep.manifest.state
    assert state.is_dir() and not (state / "routed").exists()
    with pytest.raises(ConfigError, match="Document"):
        build_sharded([docs[0], {"id": "x"}], tmp_path / "s", embedder=EMBEDDER)
    after = read_shards(tmp_path / "s")  # the refused write published nothing
    assert (after.generation, after.state, after.shards) == (rep.manifest.generation, state.name, rep.manifest.shards)


@pytest.mark.parametrize("n_shards, rounds", [(1, ["search"]), (3, ["search", "ngram"])])
def test_a_fused_query_goes_out_once_per_round_not_once_per_store(tmp_path, n_shards, rounds):
    """Round trips, not stores, set a sharded query's latency: bm25, dense and the n-gram counts share one
    call; n-gram scoring needs a second round only over several shards (a lone shard plans by itself)."""
    from retrievers.search import Retriever
    from tests.support.shard_exactness import _with_embedder, queries

    build_sharded(corpus(80), tmp_path / "s", n_shards, PARAMS, embedder=EMBEDDER)
    with open_sharded(tmp_path / "s") as sh:
        sh.encoders.share(_with_embedder())
        calls = []
        real = sh.pool.call
        sh.pool.call = lambda method, args: calls.append(method) or real(method, args)
        Retriever(sh).rows_batch(queries()[:3], "bm25+dense+ngram", 5)
        assert calls == rounds
        calls.clear()
        Retriever(sh).rows_batch(queries()[:3], "fused", 5)
        assert calls == ["search"]
