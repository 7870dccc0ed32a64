"""Sharded indexes: N ordinary indexes built and served as one, in-process or on Ray (issue #18).

`build_sharded` writes one (indexers.shards.write), `open_sharded` opens it for search (indexers.shards.sharded);
an executor decides where shards build and serve: `executor_for(None)` in this process, `executor_for("local" |
"auto" | ADDRESS)` on a Ray cluster (the `ray` extra). Results equal an unsharded index's, ids and scores.
"""
from __future__ import annotations

from indexers.shards.base import Executor, ShardPool, ShardSpec
from indexers.shards.layout import is_sharded, read_shards, shard_of, shards_stamp
from indexers.shards.local import LocalExecutor
from indexers.shards.sharded import ShardedIndex, open_sharded
from indexers.shards.write import ShardedReport, build_sharded

__all__ = ["Executor", "ShardPool", "ShardSpec", "LocalExecutor", "ShardedIndex", "ShardedReport", "build_sharded",
           "open_sharded", "is_sharded", "read_shards", "shard_of", "shards_stamp", "executor_for"]


def executor_for(ray: str | None, *, workers: int | None = None) -> Executor:
    """The in-process executor for `ray=None`, else a RayExecutor joining `ray` ("auto", "local" or an address)."""
    if ray is None:
        return LocalExecutor()
    from indexers.shards.ray import RayExecutor

    return RayExecutor(ray, workers=workers)
