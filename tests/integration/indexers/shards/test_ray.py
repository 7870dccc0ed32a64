"""On a local Ray instance: shards built by a Ray Data actor pool and served by Ray actors answer exactly like
one index; a shard actor that dies gives a clear error naming the shard, never a partial result.

The instance is started as locally as Ray allows: Ray 2.60 maps 127.0.0.1 to the node's routable address and
binds its services on every interface, so isolation comes from its token authentication (on by default)."""
from __future__ import annotations

import os

import pytest

from indexers.errors import ShardUnavailableError
from indexers.shards import build_sharded, open_sharded
from tests.support.shard_exactness import EMBEDDER, PARAMS, check_exact, corpus, queries
from retrievers.search import Retriever

ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'adarag[ray]'")


@pytest.fixture(scope="module")
def executor():
    from indexers.shards.ray import RayExecutor

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield RayExecutor("local", timeout=30)
    finally:
        ray.shutdown()


@pytest.mark.parametrize("n_shards, build_steps", [(1, (0,)), (2, (0, 1, 2, 3)), (4, (0, 2))])
def test_ray_shards_equal_one_index_after_adds_and_deletes(tmp_path, executor, n_shards, build_steps):
    """Every search on Ray actors; builds on Ray Data for the steps named (each costs an actor pool start)."""
    check_exact(tmp_path, n_shards, executor, build_steps)


def test_shards_build_in_parallel_on_separate_actors(tmp_path, executor):
    """Two shards, two builder actors: each shard on its own actor (not both queued on the first one up)."""
    rep = build_sharded(corpus(60), tmp_path / "s", 2, PARAMS, executor=executor, embedder=EMBEDDER)
    workers = [r.worker for r in rep.shards]
    assert [r.shard for r in rep.shards] == [0, 1] and all(workers)
    assert len(set(workers)) == 2 and not any(w.endswith(f":{os.getpid()}") for w in workers), workers


def test_a_dead_shard_actor_is_an_error_naming_it(tmp_path, executor):
    build_sharded(corpus(60), tmp_path / "s", 2, PARAMS, executor=executor, embedder=EMBEDDER)
    with open_sharded(tmp_path / "s", executor=executor) as sh:
        r = Retriever(sh)
        assert r.search(queries()[0], "bm25", 3)
        ray.kill(sh.pool.actors["shard-001"][0])
        with pytest.raises(ShardUnavailableError, match="shard shard-001 is down"):
            r.search(queries()[0], "bm25", 3)


def test_a_replica_answers_for_a_dead_one(tmp_path, executor):
    build_sharded(corpus(60), tmp_path / "s", 2, PARAMS, embedder=EMBEDDER)  # built in-process, served on Ray
    with open_sharded(tmp_path / "s") as local, open_sharded(tmp_path / "s", executor=executor, replicas=2) as sh:
        want = Retriever(local).search(queries()[1], "bm25+ngram", 5)
        for a in sh.pool.actors["shard-000"][:1] + sh.pool.actors["shard-001"][1:]:
            ray.kill(a)
        for _ in range(3):  # whichever replica a call starts on
            assert Retriever(sh).search(queries()[1], "bm25+ngram", 5) == want
