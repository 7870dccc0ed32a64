"""The Ray executor: shard builds in a Ray Data actor pool, shard servers as Ray actors (the `ray` extra).

Build: the driver routes the documents; a Ray Dataset of one row per shard goes through `map_batches`, which
runs ShardBuilder, a callable class, in an actor pool: the embedder loads once per actor (one GPU per actor
when the cluster has GPUs).
Serve: one actor per shard (`replicas` each) hosting a ShardServer; the coordinator calls them through actor
handles (no HTTP proxy) and gathers every shard's answer. A shard whose actors are all down is a
ShardUnavailableError naming it, never a partial result; with replicas, a dead replica is skipped.
Every node must see the index folder at the same path (a shared filesystem).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from indexers.errors import ConfigError, ShardUnavailableError, missing
from indexers.shards.base import ShardSpec
from indexers.shards.builder import ShardBuilder, ShardResult
from indexers.shards.server import ShardServer

__all__ = ["RayExecutor", "RayPool", "ray_module"]

log = logging.getLogger(__name__)


def ray_module():
    """The `ray` module, or MissingDependencyError naming the extra."""
    try:
        import ray
    except ImportError as e:
        raise missing("ray", "ray") from e
    return ray


def _connect(address: str, num_cpus: int | None) -> None:
    """Join (or start) the cluster `address` names unless this process is already connected."""
    ray = ray_module()
    if ray.is_initialized():
        return
    if address == "local":
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    elif address == "auto":
        try:
            ray.init(address="auto", log_to_driver=False)
        except ConnectionError:
            log.info("no running Ray cluster found: starting a local one")
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, log_to_driver=False)


class RayPool:
    """Shard servers as Ray actors, `replicas` per shard, called round-robin through their handles."""

    def __init__(self, specs: Sequence[ShardSpec], replicas: int, num_cpus: float, timeout: float | None) -> None:
        ray = ray_module()
        self._ray, self.timeout = ray, timeout
        actor = ray.remote(ShardServer)
        self.actors: dict[str, list[Any]] = {
            s.name: [actor.options(num_cpus=num_cpus, max_restarts=0).remote(s) for _ in range(replicas)]
            for s in specs}
        self._turn = 0
        try:
            self.call("ping", {s.name: () for s in specs})
        except BaseException:
            self.close()
            raise

    def call(self, method: str, args: Mapping[str, tuple[Any, ...]]) -> dict[str, Any]:
        ray = self._ray
        self._turn += 1
        refs = {}
        for name, a in args.items():
            reps = self.actors[name]
            refs[name] = (self._turn % len(reps), getattr(reps[self._turn % len(reps)], method).remote(*a))
        out = {}
        for name, (first, ref) in refs.items():
            try:
                out[name] = ray.get(ref, timeout=self.timeout)
                continue
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as e:
                err: BaseException = e
            reps = self.actors[name]
            for i in [j for j in range(len(reps)) if j != first]:  # the next replica, if any, answers instead
                try:
                    out[name] = ray.get(getattr(reps[i], method).remote(*args[name]), timeout=self.timeout)
                    break
                except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as e:
                    err = e
            else:
                raise ShardUnavailableError(
                    f"shard {name} is down ({type(err).__name__}: every one of its {len(reps)} actor(s) failed); "
                    "no partial result is returned: reopen the index (RAG.open / restart `adarag serve`), and "
                    "check the Ray cluster (`ray status`)") from None
        return out

    def close(self) -> None:
        for reps in self.actors.values():
            for a in reps:
                try:
                    self._ray.kill(a)
                except Exception as e:  # noqa: BLE001 - already dead: nothing to stop
                    log.debug("killing a shard actor: %s", e)
        self.actors = {}


class RayExecutor:
    """Builds shards in a Ray Data actor pool and serves them from Ray actors.

    `address`: "local" (start a Ray instance here), "auto" (join the running cluster, else start one) or a
    cluster address (`ray start --head` prints it); `workers`: builder actors (default: the cluster's CPUs)."""

    name = "ray"

    def __init__(self, address: str = "auto", *, workers: int | None = None, num_cpus: int | None = None,
                 server_cpus: float = 0.0, timeout: float | None = 60.0) -> None:
        if not isinstance(address, str) or not address:
            raise ConfigError(f"ray must be 'auto', 'local' or a cluster address, got {address!r}")
        _connect(address, num_cpus)
        self.address, self.workers, self.server_cpus, self.timeout = address, workers, server_cpus, timeout

    def build(self, builder: ShardBuilder) -> list[ShardResult]:
        ray = ray_module()
        # one row per shard (routed by the writer into files the actors read): no all-to-all shuffle, which on
        # a small cluster would wait for CPUs the builder actors hold, and no corpus in the object store
        items = [{"shard": s} for s in sorted(builder.jobs)]
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = max(1, int(resources.get("CPU", 1)))
        pool = max(1, min(len(items), self.workers or (gpus or cpus)))
        # one shard in flight per actor: with more, the first actor up takes every shard, Ray Data retires
        # the others as idle ("consumed all inputs") and the shards build one after another
        compute = ray.data.ActorPoolStrategy(size=pool, max_tasks_in_flight_per_actor=1)
        out = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            ShardBuilder, fn_constructor_args=(builder.params, builder.jobs, builder.embedder, builder.threads),
            batch_size=1, batch_format="numpy", compute=compute, num_cpus=1, num_gpus=1 if gpus else 0)
        return [ShardResult(**json.loads(r["result"])) for r in out.take_all()]

    def serve(self, specs: Sequence[ShardSpec], replicas: int = 1) -> RayPool:
        return RayPool(specs, replicas, self.server_cpus, self.timeout)
