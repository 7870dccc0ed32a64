"""The in-process executor: shards are built one after another and served from this process (no Ray)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from indexers.shards.base import ShardSpec
from indexers.shards.builder import ShardBuilder, ShardResult
from indexers.shards.server import ShardServer

__all__ = ["LocalExecutor", "LocalPool"]


class LocalPool:
    """Shard servers living in this process; calls run one after another."""

    def __init__(self, specs: Sequence[ShardSpec]) -> None:
        self.servers: dict[str, ShardServer] = {}
        try:
            for s in specs:
                self.servers[s.name] = ShardServer(s)
        except BaseException:
            self.close()
            raise

    def call(self, method: str, args: Mapping[str, tuple[Any, ...]]) -> dict[str, Any]:
        return {name: getattr(self.servers[name], method)(*a) for name, a in args.items()}

    def close(self) -> None:
        for s in self.servers.values():
            s.close()
        self.servers = {}


class LocalExecutor:
    """Builds and serves shards in this process."""

    name = "local"

    def build(self, builder: ShardBuilder) -> list[ShardResult]:
        return [builder.build(s) for s in sorted(builder.jobs)]

    def serve(self, specs: Sequence[ShardSpec], replicas: int = 1) -> LocalPool:
        return LocalPool(specs)
