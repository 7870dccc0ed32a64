"""The executor protocol of sharded indexes: who runs shard builds and hosts shard servers.

One code path builds and serves a sharded index; an executor only decides where the work runs: in this
process (indexers.shards.local) or on a Ray cluster (indexers.shards.ray). Both run the same ShardBuilder and
ShardServer, so a sharded index gives the same results under either.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from indexers.shards.builder import ShardBuilder, ShardResult

__all__ = ["ShardSpec", "ShardPool", "Executor"]


@dataclass(frozen=True)
class ShardSpec:
    """Where a shard server finds its shard: the index root, the shard's folder and the state folder."""

    root: str
    name: str
    dir: str
    state: str
    verify: bool = True


@runtime_checkable
class ShardPool(Protocol):
    """Servers of a sharded index's shards, called by shard name."""

    def call(self, method: str, args: Mapping[str, tuple[Any, ...]]) -> dict[str, Any]:
        """`ShardServer.<method>(*args[name])` on each named shard, concurrently; a shard that is down (and has
        no replica that answers) raises ShardUnavailableError naming it, never a partial result."""
        ...

    def close(self) -> None:
        """Stop the servers (actors) this pool started."""
        ...


class Executor(Protocol):
    """Runs a write's shard builds and starts shard servers."""

    name: str

    def build(self, builder: ShardBuilder) -> list[ShardResult]:
        """Run `builder` over each of its jobs' shards (each job names the file of its routed documents)."""
        ...

    def serve(self, specs: Sequence[ShardSpec], replicas: int = 1) -> ShardPool:
        """Start a server per shard (`replicas` each where the executor can)."""
        ...
