"""Build, add to and delete from a sharded index (indexers.shards.layout): route, build shards, reduce, publish.

A write routes each document (and each id to delete) to its shard, numbers documents in write order, clones
the shards it changes, runs their builds on an executor (in-process or Ray), reduces the shards' live BM25 df
tables into collection-wide statistics (a term's df is the sum of its shard dfs; Okapi's mean idf needs every
term's, so the reduction is over the whole vocabulary), and publishes `shards.json` last.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from indexers.bm25_segments import BM25Global
from indexers.errors import ConfigError, CorpusError
from indexers.index import BuildParams, check_document_stream, params_from_saved
from indexers.index_dir import MANIFEST, index_state, read_manifest
from indexers.lock import DEFAULT_LOCK_WAIT, WriteLock
from indexers.shards.base import Executor
from indexers.shards.builder import BM25_DIR, SEQ, ShardBuilder, ShardJob, ShardResult, load_df_table, write_routed
from indexers.shards.layout import (
    ShardEntry,
    ShardsManifest,
    check_n_shards,
    clone_shard,
    is_sharded,
    read_shards,
    remove_unreferenced,
    shard_dir_name,
    shard_of,
    state_dir_name,
    write_shards,
)
from indexers.text import DEFAULT_ANALYZER
from indexers.types import Document

__all__ = ["ShardedReport", "build_sharded", "GLOBAL", "TERMS", "DF"]

log = logging.getLogger(__name__)

GLOBAL, TERMS, DF = "global.json", "terms.json", "df.npy"
_ROUTED = "routed"  # this write's documents, one JSONL per shard (removed once the shards are built)


@dataclass(frozen=True)
class ShardedReport:
    """What a sharded write did (summed over its shards), with wall-clock seconds per stage."""

    manifest: ShardsManifest
    added: int
    updated: int
    unchanged: int
    deleted: int
    embedded: int
    seconds: dict[str, float]
    shards: tuple[ShardResult, ...] = ()  # each written shard's own report (its seconds, where it was built)


def _referenced(m: ShardsManifest | None) -> set[str]:
    return set() if m is None else {m.state} | {e.dir for e in m.shards if e.dir}


def build_sharded(documents: Iterable[Document], out: str | Path, n_shards: int | None = None,
                  params: BuildParams | None = None, *, executor: Executor | None = None, rebuild: bool = False,
                  delete: Sequence[str] = (), embedder: Any = None, threads: int | None = None,
                  lock_wait: float | None = DEFAULT_LOCK_WAIT) -> ShardedReport:
    """Index `documents` into the sharded index `out` (N = `n_shards` shards when new or `rebuild`), adding to
    it otherwise; `delete` names documents to remove. Shards build on `executor` (default: in-process).
    Holds `out`'s write lock; a write killed at any point leaves the previous generation as it was."""
    from indexers.shards.local import LocalExecutor

    if isinstance(delete, str):
        raise ConfigError("delete must be a list of document ids, not one string")
    executor = executor or LocalExecutor()
    out = Path(out).expanduser().resolve()
    if (out / MANIFEST).exists():
        raise ConfigError(f"{out} is an unsharded adarag index: build the sharded one into a new folder, or "
                          "search this one without --shards/--ray")
    if out.exists() and not is_sharded(out) and index_state(out) not in ("absent", "empty"):
        raise ConfigError(f"{out} is not empty and not an adarag index: give --out a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    with WriteLock(out, wait=lock_wait):
        old = read_shards(out) if is_sharded(out) else None
        remove_unreferenced(out, _referenced(old), newer_than=old.generation if old else 0)
        if old is not None and not rebuild:
            if n_shards is not None and n_shards != old.n_shards:
                raise ConfigError(f"{out} has {old.n_shards} shards; to change the count rebuild it: "
                                  f"`adarag index CORPUS --out {out} --shards {n_shards} --rebuild`")
            if params is not None and params != params_from_saved(old.params):
                log.warning("%s exists: keeping its build parameters (use rebuild to change them)", out)
            n, params = old.n_shards, params_from_saved(old.params)
        else:
            if n_shards is None:
                raise ConfigError(f"{out} is a new sharded index: say how many shards (--shards N)")
            n, params = check_n_shards(n_shards), params or BuildParams()
        if params.sql_url is not None:
            raise ConfigError("a sharded index keeps one SQLite document store per shard: --sql cannot be "
                              "combined with --shards")
        w = _Write(out, old, n, params, rebuild or old is None)
        try:
            return w.run(documents, delete, executor, embedder, threads)
        finally:
            w.cleanup()


class _Write:
    def __init__(self, out: Path, old: ShardsManifest | None, n: int, params: BuildParams, fresh: bool) -> None:
        self.out, self.old, self.n, self.params, self.fresh = out, old, n, params, fresh
        self.gen = (old.generation if old is not None else 0) + 1
        self.state = out / state_dir_name(self.gen)
        self.published = False

    def run(self, documents: Iterable[Document], delete: Sequence[str], executor: Executor, embedder: Any,
            threads: int | None) -> ShardedReport:
        t0 = time.perf_counter()
        seconds: dict[str, float] = {}
        next_seq = 0 if self.fresh or self.old is None else self.old.next_seq
        self.state.mkdir()
        t = time.perf_counter()
        next_seq, counts = self._route(documents, next_seq)
        seconds["route"] = time.perf_counter() - t
        deletes: dict[int, list[str]] = {}
        for i in dict.fromkeys(delete):
            deletes.setdefault(shard_of(i, self.n), []).append(i)
        touched = set(range(self.n)) if self.fresh else set(counts) | set(deletes)
        old_entries = self.old.shards if self.old is not None else [ShardEntry(f"shard-{i:03d}", "", 0)
                                                                     for i in range(self.n)]
        jobs = {}
        t = time.perf_counter()
        for s in sorted(touched):
            prev = "" if self.fresh else old_entries[s].dir
            if not prev and not counts.get(s):
                continue  # deletes from an empty shard: nothing to do
            dst = self.out / shard_dir_name(s, self.gen)
            if prev:
                clone_shard(self.out / prev, dst)
            jobs[s] = ShardJob(s, old_entries[s].name, str(dst), str(self.out / prev) if prev else "",
                               str(self.out / self.old.state) if self.old is not None and not self.fresh else "",
                               str(self.state), self.fresh, tuple(deletes.get(s, ())),
                               str(self._routed(s)) if counts.get(s) else "", counts.get(s, 0))
        seconds["clone"] = time.perf_counter() - t
        t = time.perf_counter()
        results = {r.shard: r for r in executor.build(ShardBuilder(self.params, jobs, embedder, threads))} \
            if jobs else {}
        seconds["shards"] = time.perf_counter() - t
        shutil.rmtree(self.state / _ROUTED, ignore_errors=True)  # read by the builds; not part of the state
        entries = []
        for s, e in enumerate(old_entries):
            r = results.get(s)
            if r is None:  # untouched: its folder and state carry over
                entry = ShardEntry(e.name, "" if self.fresh else e.dir, 0 if self.fresh else e.generation)
                if entry.dir:
                    self._carry_state(e.name)
            else:
                entry = ShardEntry(e.name, r.dir, r.generation)
            entries.append(entry)
        live = [e for e in entries if e.dir]
        if not live:
            raise CorpusError("the corpus has no passages with text: nothing to index")
        t = time.perf_counter()
        if "bm25" in self.params.stores:
            self._reduce_bm25([e.name for e in live])
        seconds["reduce"] = time.perf_counter() - t
        shard_manifests = [read_manifest(self.out / e.dir) for e in live]
        m = ShardsManifest(
            n_shards=self.n, shards=entries, state=self.state.name,
            params={**asdict(self.params), "analyzer": DEFAULT_ANALYZER.name},
            n_docs=sum(x.n_docs for x in shard_manifests), n_passages=sum(x.n_passages for x in shard_manifests),
            next_seq=next_seq, generation=self.gen)
        write_shards(self.out, m)
        self.published = True
        remove_unreferenced(self.out, _referenced(m) | _referenced(self.old))
        rs = [results[s] for s in sorted(results)]
        seconds["total"] = time.perf_counter() - t0
        return ShardedReport(m, sum(r.added for r in rs), sum(r.updated for r in rs), sum(r.unchanged for r in rs),
                             sum(r.deleted for r in rs), sum(r.embedded for r in rs), seconds, tuple(rs))

    def _routed(self, shard: int) -> Path:
        return self.state / _ROUTED / f"{shard:03d}.jsonl"

    def _route(self, documents: Iterable[Document], seq: int) -> tuple[int, dict[int, int]]:
        """Stream `documents` into one file per shard (sequence-numbered, in write order), so neither this
        process nor a builder ever holds the corpus; returns the next sequence and documents per shard."""
        check_document_stream(documents)
        (self.state / _ROUTED).mkdir()
        files: dict[int, TextIO] = {}
        counts: dict[int, int] = {}
        try:
            for doc in documents:
                if not isinstance(doc, Document):
                    raise ConfigError(f"documents must be Document objects, got {type(doc).__name__}")
                s = shard_of(doc.id, self.n)
                if s not in files:
                    files[s] = open(self._routed(s), "w", encoding="utf-8")
                write_routed(files[s], seq, doc)
                counts[s] = counts.get(s, 0) + 1
                seq += 1
        finally:
            for f in files.values():
                f.close()
        return seq, counts

    def _carry_state(self, name: str) -> None:
        """Hard-link an untouched shard's state files from the previous state folder."""
        for sub in (SEQ, BM25_DIR):
            src = self.out / self.old.state / sub / name
            if src.is_dir():
                shutil.copytree(src, self.state / sub / name, copy_function=os.link)

    def _reduce_bm25(self, names: list[str]) -> None:
        """The collection's live df per term and its BM25Global: sums of the shards' tables."""
        df: Counter[str] = Counter()
        n_rows = total = 0
        for name in names:
            d, r, t = load_df_table(self.state / BM25_DIR / name)
            df.update(d)
            n_rows += r
            total += t
        folder = self.state / BM25_DIR
        folder.mkdir(parents=True, exist_ok=True)
        BM25Global(n_rows, total, dict(Counter(v for v in df.values() if v > 0))).save(folder / GLOBAL)
        terms = sorted(t for t, c in df.items() if c > 0)
        np.save(folder / DF, np.array([df[t] for t in terms], dtype=np.int64), allow_pickle=False)
        (folder / TERMS).write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")

    def cleanup(self) -> None:
        """After a failed write: remove what it made (nothing published names it)."""
        if self.published:
            return
        remove_unreferenced(self.out, _referenced(self.old), newer_than=self.old.generation if self.old else 0)
