"""Build an index directory from documents (SQL store + segmented passage stores) and open it again.

An index (format 3, indexers.index_dir) is a list of immutable segments (indexers.segments) plus per-segment
deletion folders, a SQLite document store updated in place, and a manifest that names them; every write holds
the index's write lock (indexers.lock) and publishes by one atomic manifest replace. A write is O(what
changed): new and changed documents go into new segments, replaced and deleted passages are marked deleted in
the segments holding them, and the SQL store logs an undo pre-image of every document it touches until the
manifest is published, so a writer killed at any moment leaves the last published generation as it was (the
next write rolls the SQL store back). A merge policy keeps the segment count bounded; `optimize` merges all.
Searches over segments with deletions equal a fresh one-segment build of the live passages (each store's
`open` aggregates exactly: see indexers.stores).
"""
from __future__ import annotations

import functools
import logging
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import URL

from indexers.bm25 import BM25Index, BM25Params
from indexers.dense import DenseIndex, DenseParams
from indexers.errors import ConfigError, CorpusError, IndexBusyError, IndexFormatError, positive_int
from indexers.index_dir import (
    Manifest,
    clean_leftovers,
    index_state,
    manifest_stamp,
    new_stage,
    publish_segments,
    read_manifest,
    recover_swap,
    verify_index,
)
from indexers.ingest import SplitConfig
from indexers.lock import DEFAULT_LOCK_WAIT, WriteLock
from indexers.ngram import NgramIndex, NgramParams
from indexers.segments import Segment, live_rows_of, load_segment, segment_name, write_deleted_rows, write_row_maps
from indexers.sql_store import SQLStore, copy_sqlite
from indexers.stores import STORE_KINDS, Store, store_kind
from indexers.stores.base import BuildEnv, LoadEnv, Previous, Ranked
from indexers.stores.encoders import Encoders
from indexers.text import DEFAULT_ANALYZER
from indexers.types import Document, Hit, Passage

__all__ = ["STORES", "BuildParams", "BuildReport", "Index", "batched", "build_index", "check_document_stream", "optimize",
           "open_index"]

log = logging.getLogger(__name__)

STORES = tuple(STORE_KINDS)
_SQLITE = "docs.sqlite"  # a format-1/2 index's document store, in its data folder
_DOC_BATCH = 1000  # documents per SQL transaction while streaming a build


@dataclass(frozen=True)
class BuildParams:
    """Everything that shapes an index; saved in the manifest so the index can be reproduced.

    Each registered store has a params field named after it (indexers.stores), passed to its build."""

    stores: tuple[str, ...] = STORES
    passage_words: int = 200
    passage_overlap: int = 50
    bm25: BM25Params = field(default_factory=BM25Params)
    dense: DenseParams = field(default_factory=DenseParams)
    ngram: NgramParams = field(default_factory=NgramParams)
    sql_url: str | None = None
    sql_namespace: str = ""
    segment_passages: int = 100_000  # a segment's size cap: a build holds at most this many passages in memory
    max_segments: int = 10  # the merge policy merges adjacent segments beyond this many (within the cap)

    def __post_init__(self) -> None:
        for name in ("segment_passages", "max_segments"):
            v = getattr(self, name)
            positive_int(v, f"BuildParams.{name}")
        unknown = [s for s in self.stores if s not in STORES]
        if unknown or not self.stores:
            raise ConfigError(f"unknown store(s) {unknown or list(self.stores)}; valid stores: {', '.join(STORES)}")


@dataclass(frozen=True)
class BuildReport:
    """What a build did, with wall-clock seconds per stage."""

    manifest: Manifest
    added: int
    updated: int
    unchanged: int
    embedded: int
    seconds: dict[str, float]
    deleted: int = 0


def _params_from_manifest(m: Manifest) -> BuildParams:
    """The build parameters a manifest records; any missing or ill-typed one is an IndexFormatError."""
    p = dict(m.params)
    try:
        return BuildParams(
            stores=tuple(p["stores"]),
            passage_words=p["passage_words"],
            passage_overlap=p["passage_overlap"],
            bm25=BM25Params(**p["bm25"]),
            dense=DenseParams(**p["dense"]),
            ngram=NgramParams.from_saved(p["ngram"]) if "ngram" in p else NgramParams(),
            sql_url=p.get("sql_url"),
            sql_namespace=p.get("sql_namespace", ""),
            segment_passages=p.get("segment_passages", 100_000),
            max_segments=p.get("max_segments", 10),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise IndexFormatError(f"the manifest of this index has bad build parameters ({type(e).__name__}: {e}); "
                               "rebuild it with `adarag index CORPUS --out INDEX --rebuild`") from None


def _writable_state(out: Path) -> str:
    """index_state(out), refusing a folder that holds anything but an adarag index (nothing else is written over)."""
    state = index_state(out)
    if state == "foreign":
        raise ConfigError(
            f"{out} is not empty and not an adarag index: adarag never writes over other files. Give --out a new "
            "or empty folder (or an existing adarag index to add to)"
        )
    return state


def _open_out(out: str | Path) -> tuple[Path, bool]:
    """Resolve `out` (a symlinked index keeps working) and create it; (path, whether this call created it)."""
    out = Path(out).expanduser().resolve()
    recover_swap(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: give a folder for the index (new, empty, or an adarag index)")
    _writable_state(out)  # before the lock file is made in it
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the index folder {out}: {e.strerror or e}; choose a writable path") from None
    return out, created


def build_index(
    documents: Iterable[Document],
    out: str | Path,
    params: BuildParams | None = None,
    *,
    rebuild: bool = False,
    threads: int | None = None,
    progress: bool = True,
    embedder=None,
    delete: Sequence[str] = (),
    lock_wait: float | None = DEFAULT_LOCK_WAIT,
) -> BuildReport:
    """Index `documents` into `out`, adding to an existing index there unless `rebuild`.

    Documents are streamed: memory is bounded by one segment (`params.segment_passages`), not the corpus.
    When `out` already holds an index its build parameters are kept (pass `rebuild=True` to change them).
    `delete` names documents to remove in the same atomic step (unknown ids are ignored). `out` must be new,
    empty or an adarag index: nothing else is ever written over. The write holds the index's lock (waiting
    up to `lock_wait` seconds for another writer) and publishes a new generation atomically (module doc).
    `embedder` overrides loading the model named in `params.dense.embedder` (tests use a hash embedder).
    """
    if isinstance(delete, str):
        raise ConfigError("delete must be a list of document ids, not one string")
    out, created = _open_out(out)
    published = False
    try:
        with WriteLock(out, wait=lock_wait):
            old, params = _writer_start(out, params, rebuild)
            w = _Writer(out, old, params, rebuild, Encoders(params.dense, params.ngram, embedder=embedder,
                                                             threads=threads), progress)
            rep = w.run(documents, delete)
            published = True
            return rep
    finally:
        if created and not published and index_state(out) == "empty":  # a failed first build leaves no folder
            shutil.rmtree(out, ignore_errors=True)


def optimize(root: str | Path, *, threads: int | None = None, progress: bool = True, embedder=None,
             lock_wait: float | None = DEFAULT_LOCK_WAIT) -> BuildReport:
    """Merge every segment of index `root` into one, dropping deleted rows (`adarag optimize`). Needs the
    memory of a one-segment build of the whole index; results do not change."""
    root, _ = _open_out(root)
    with WriteLock(root, wait=lock_wait):
        old, params = _writer_start(root, None, False)
        if old is None:
            raise IndexFormatError(f"no index at {root}; build one with `adarag index CORPUS --out {root}`")
        w = _Writer(root, old, params, False, Encoders(params.dense, params.ngram, embedder=embedder,
                                                       threads=threads), progress)
        return w.run([], (), merge_all=True)


def _writer_start(out: Path, params: BuildParams | None, rebuild: bool) -> tuple[Manifest | None, BuildParams]:
    """The published manifest a write starts from (verified) and the parameters it writes with; leftovers of
    killed writers are removed and their SQL changes rolled back."""
    state = _writable_state(out)
    old: Manifest | None = None
    if state == "index" and not rebuild:
        old = verify_index(out)
        if params is not None and params != _params_from_manifest(old):
            log.warning("%s exists: keeping its build parameters (use rebuild to change them)", out)
        params = _params_from_manifest(old)
    elif state == "index":  # rebuild: the old generation only needs naming, so a corrupt one is no obstacle
        try:
            old = read_manifest(out)
        except IndexFormatError as e:
            log.warning("rebuilding over an unreadable index (%s)", e)
    params = params or BuildParams()
    clean_leftovers(out, old)
    if old is not None and (old.version >= 3 or params.sql_url is not None):
        try:
            with SQLStore(_sql_of(out, old, params), namespace=params.sql_namespace) as store:
                for g in store.pending_generations():
                    if g > old.generation:
                        log.warning("%s: rolling back the document store changes of an interrupted write", out)
                        store.rollback(g)
                    else:
                        store.commit_generation(g)
        except IndexFormatError:
            if not rebuild:
                raise
    return old, params


def _sql_of(root: Path, m: Manifest | None, params: BuildParams, fresh: str = "") -> str | URL:
    """The SQL store's URL: the user's, else the SQLite file the manifest names (or `fresh`, a new one). Built
    with URL.create, so a `?` or `%` in the path stays part of the file name instead of becoming a URL query."""
    if params.sql_url:
        return params.sql_url
    if fresh:
        path = root / fresh
    elif m is not None and m.version >= 3:
        path = root / m.sql
    elif m is not None and m.version == 2:
        path = root / m.data / _SQLITE
    else:
        path = root / _SQLITE
    return URL.create("sqlite", database=str(path))


def _segments_of(root: Path, m: Manifest) -> list[Segment]:
    """The manifest's segments, loaded (a format-1/2 index is one segment: its data folder)."""
    if m.version >= 3:
        return [load_segment(root / e["name"], e["name"], e["n_rows"], e["deleted"], e["n_deleted"])
                for e in m.segments]
    data = root / m.data if m.version == 2 else root
    return [load_segment(data, m.data, m.n_passages, legacy=True)]


def _remove_sqlite(path: Path) -> None:
    for side in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{side}").unlink(missing_ok=True)


class _Writer:
    """One write: documents stream through the SQL store into new segments; replaced and deleted passages are
    marked in the segments holding them; small segments are merged; the result is published atomically."""

    def __init__(self, out: Path, old: Manifest | None, params: BuildParams, rebuild: bool, encoders: Encoders,
                 progress: bool) -> None:
        self.out, self.old, self.params, self.encoders, self.progress = out, old, params, encoders, progress
        self.gen = (old.generation if old is not None else 0) + 1
        self.incremental = old is not None and old.version >= 3 and not rebuild
        # a legacy index (format 1/2) is converted once: its SQL copied, its segments rebuilt from the store
        self.resync = not self.incremental and (
            (old is not None and old.version < 3 and not rebuild) or (rebuild and params.sql_url is not None))
        self.sql_file = "" if params.sql_url else (old.sql if self.incremental else f"docs-{self.gen:06d}.sqlite")
        self.segments: list[Segment] = _segments_of(out, old) if self.incremental else []
        self.before = list(self.segments)  # the previous generation's segments, as they were
        self.before_parts = {name: [s.part(name) for s in self.before] for name in params.stores}
        self.marked: dict[str, list[Passage]] = {}  # segment name -> passages this write deleted from it
        self.removed_of: dict[str, list[Passage]] = {}  # the same, kept when a merge replaces the segment
        self.added: list[Passage] = []  # passages put in new segments (for store statistics)
        self.buffer: list[Passage] = []
        self.k = 0
        self.embedded = 0
        self.stage = new_stage(out)
        self.moves: list[tuple[Path, str]] = []
        self.seconds: dict[str, float] = {}

    # ---------------------------------------------------------------- the write

    def run(self, documents: Iterable[Document], delete: Sequence[str], merge_all: bool = False) -> BuildReport:
        t0 = time.perf_counter()
        fresh_sql = not self.params.sql_url and not self.incremental
        logged = self.incremental or self.params.sql_url is not None
        if fresh_sql:
            _remove_sqlite(self.out / self.sql_file)
            if self.resync and self.old is not None:
                copy_sqlite(Path(_sql_of(self.out, self.old, self.params).database), self.out / self.sql_file)
        store = SQLStore(_sql_of(self.out, self.old, self.params, self.sql_file if fresh_sql else ""),
                         namespace=self.params.sql_namespace)
        manifest = None
        try:
            try:
                if logged:
                    store.begin_generation(self.gen)
                counts = self._ingest(store, documents, delete, logged)
                if store.count_passages() == 0:
                    raise CorpusError("the corpus has no passages with text: nothing to index")
                changed = counts["added"] or counts["updated"] or counts["deleted"] or merge_all
                if self.incremental and not changed:  # nothing changed: no new generation to publish
                    store.rollback(self.gen)
                    shutil.rmtree(self.stage, ignore_errors=True)
                    self.seconds["total"] = time.perf_counter() - t0
                    return BuildReport(self.old, 0, 0, counts["unchanged"], 0, self.seconds, 0)
                if self.resync:
                    self._add(store.iter_passages())
                self._flush()
                t = time.perf_counter()
                self._merge(store, merge_all)
                self.seconds["merge"] = time.perf_counter() - t
                self._write_deletions()
                self._write_state()
                if not logged:  # a new file only the new manifest names: stamp it before publishing
                    store.commit_generation(self.gen)
                manifest = self._publish(store.count_documents())
            except BaseException:
                shutil.rmtree(self.stage, ignore_errors=True)
                if logged:
                    store.rollback(self.gen)
                raise
            if logged:
                store.commit_generation(self.gen)
        finally:
            store.close()
            if fresh_sql and manifest is None:  # a new SQLite file nothing published refers to
                _remove_sqlite(self.out / self.sql_file)
        self.seconds["total"] = time.perf_counter() - t0
        return BuildReport(manifest, counts["added"], counts["updated"], counts["unchanged"], self.embedded,
                           self.seconds, counts["deleted"])

    def _ingest(self, store: SQLStore, documents: Iterable[Document], delete: Sequence[str],
                logged: bool) -> dict[str, int]:
        """Stream `documents` through the SQL store in batches; their new passages fill new segments."""
        t = time.perf_counter()
        counts = {"added": 0, "updated": 0, "unchanged": 0, "deleted": 0}
        split = SplitConfig(self.params.passage_words, self.params.passage_overlap)
        gen = self.gen if logged else None
        seen: set[str] | None = set() if (self.resync and self.params.sql_url is not None) else None
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(desc="indexing documents", unit="doc", leave=False)
        check_document_stream(documents)
        for batch in batched(documents, _DOC_BATCH):
            w = store.write(batch, (), split, generation=gen)
            counts["added"] += len(w.summary.added)
            counts["updated"] += len(w.summary.updated)
            counts["unchanged"] += len(w.summary.unchanged)
            if seen is not None:
                seen.update(d.id for d in batch)
            if not self.resync:
                self._remove(w.removed_passages)
                self._add(w.new_passages)
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()
        if seen is not None:  # rebuild over an external store: sync it (documents not in the corpus go)
            delete = [*delete, *(i for i in store.document_ids() if i not in seen)]
        if delete:
            w = store.write([], delete, split, generation=gen)
            counts["deleted"] = w.n_deleted
            if not self.resync:
                self._remove(w.removed_passages)
        self.seconds["sql"] = time.perf_counter() - t
        return counts

    # ---------------------------------------------------------------- segments

    def _add(self, passages: Iterable[Passage]) -> None:
        """Buffer new passages; every `segment_passages` of them become a segment."""
        cap = self.params.segment_passages
        for p in passages:
            self.buffer.append(p)
            if len(self.buffer) >= cap:
                self._flush()

    def _flush(self) -> None:
        """Write the buffered passages as a new segment (in the stage)."""
        if not self.buffer:
            return
        passages, self.buffer = self.buffer, []
        if self.incremental:
            self.added.extend(passages)
        self.segments.append(self._write_segment(passages, None))

    def _write_segment(self, passages: Sequence[Passage], previous: Previous | None) -> Segment:
        name = segment_name(self.gen, self.k)
        self.k += 1
        directory = self.stage / name
        hashes = write_row_maps(directory, passages)
        env = BuildEnv(self.encoders, hashes, previous, self.progress)
        for store_name in self.params.stores:
            t = time.perf_counter()
            n = store_kind(store_name).build(passages, directory / store_name, getattr(self.params, store_name), env)
            if store_name == "dense":
                self.embedded += n
            self.seconds[store_name] = self.seconds.get(store_name, 0.0) + time.perf_counter() - t
        self.moves.append((directory, name))
        return load_segment(directory, name, len(passages))

    def _remove(self, passages: Sequence[Passage]) -> None:
        """Mark `passages` (stored versions this write replaced or deleted) deleted where they are live: still
        buffered, or in the one segment holding the id live (O(log n) per id and segment)."""
        if not passages:
            return
        by_id = {p.id: p for p in passages}
        buffered = {p.id for p in self.buffer} & by_id.keys()
        if buffered:
            self.buffer = [p for p in self.buffer if p.id not in buffered]
        remaining = sorted(by_id.keys() - buffered)
        for seg in reversed(self.segments):
            if not remaining:
                break
            found = seg.find(remaining)
            if not found:
                continue
            seg.deleted_rows = np.union1d(seg.deleted_rows, list(found.values())).astype(np.int64)
            ours = seg.directory.parent != self.out  # a segment of this write: its passages were never live
            for pid in found:
                self.marked.setdefault(seg.name, []).append(by_id[pid])
                if not ours:
                    self.removed_of.setdefault(seg.name, []).append(by_id[pid])
            if ours:
                self.added = [a for a in self.added if a.id not in found]
            remaining = [i for i in remaining if i not in found]

    def _merge(self, store: SQLStore, merge_all: bool) -> None:
        """Merge policy: adjacent segments merge while there are more than `max_segments` and the merged one
        stays within `segment_passages`; a segment with most rows deleted is rewritten (`merge_all`: one)."""
        cap, limit = self.params.segment_passages, self.params.max_segments

        def live(s: Segment) -> int:
            return s.n_rows - len(s.deleted_rows)

        while len(self.segments) > 1:
            if merge_all:
                run = (0, len(self.segments))
            else:
                pairs = [(live(a) + live(b), i) for i, (a, b) in enumerate(zip(self.segments, self.segments[1:]))
                         if live(a) + live(b) <= cap]
                if len(self.segments) <= limit or not pairs:
                    break
                run = (min(pairs)[1], min(pairs)[1] + 2)
            self._merge_run(store, *run)
            if merge_all:
                break
        for i, s in enumerate(self.segments):
            if s.n_rows and len(s.deleted_rows) * 2 > s.n_rows:
                self._merge_run(store, i, i + 1)

    def _merge_run(self, store: SQLStore, i: int, j: int) -> None:
        run = self.segments[i:j]
        ids = [str(x) for s in run for x in s.ids[live_rows_of(s)].tolist()]
        hashes = [str(x) for s in run for x in s.hashes[live_rows_of(s)].tolist()]
        stored = store.stored_passages(ids)
        if any(i not in stored or stored[i][1] != h for i, h in zip(ids, hashes)):
            raise IndexFormatError(f"index {self.out}: the document store does not hold the passages its segments "
                                   f"list (out of sync); rebuild it with `adarag index CORPUS --out {self.out} --rebuild`")
        prev = Previous(tuple(s.directory for s in run), tuple(self.params.stores))
        merged = self._write_segment([stored[i][0] for i in ids], prev) if ids else None
        for s in run:
            self.marked.pop(s.name, None)
            if s.directory.parent == self.stage:
                self.moves = [(a, b) for a, b in self.moves if b != s.name]
                shutil.rmtree(s.directory, ignore_errors=True)
        self.segments[i:j] = [merged] if merged is not None else []

    def _write_deletions(self) -> None:
        """A new deletion folder for each segment this write deleted rows from."""
        for seg in self.segments:
            removed = self.marked.get(seg.name)
            if not removed:
                continue
            folder = f"del-{self.gen:06d}"
            if seg.directory.parent == self.stage:  # a segment of this write: its folder moves with it
                directory, dst = seg.directory / folder, None
            else:
                directory, dst = self.stage / "deleted" / seg.name / folder, f"{seg.name}/{folder}"
            write_deleted_rows(directory, seg.deleted_rows)
            for name in self.params.stores:
                store_kind(name).write_deleted(seg.part(name), removed, directory / name,
                                               getattr(self.params, name), self.encoders)
            if dst is not None:
                self.moves.append((directory, dst))
            seg.deleted_name = folder

    def _write_state(self) -> None:
        """Generation-wide store state (e.g. BM25's collection statistics) into the generation folder."""
        gen_dir = self.stage / f"gen-{self.gen:06d}"
        gen_dir.mkdir()
        removed = [self.removed_of.get(s.name, []) for s in self.before]
        for name in self.params.stores:
            prev = self.out / self.old.data / name if self.incremental else None
            store_kind(name).write_state(
                self.before_parts[name] if self.incremental else None, prev if prev and prev.is_dir() else None,
                self.added, removed, [s.part(name) for s in self.segments], gen_dir / name,
                getattr(self.params, name), self.encoders)
        self.moves.append((gen_dir, gen_dir.name))

    def _publish(self, n_docs: int) -> Manifest:
        entries = [{"name": s.name, "n_rows": s.n_rows, "deleted": s.deleted_name,
                    "n_deleted": len(s.deleted_rows)} for s in self.segments]
        keep = {s.name for s in self.segments if s.directory.parent == self.out}
        dels = {f"{s.name}/{s.deleted_name}" for s in self.segments if s.deleted_name}
        files = {}
        if self.incremental:
            for rel, meta in self.old.files.items():
                parts = rel.split("/")
                if parts[0] in keep and (not parts[1].startswith("del-") or f"{parts[0]}/{parts[1]}" in dels):
                    files[rel] = meta
        n_live = sum(e["n_rows"] - e["n_deleted"] for e in entries)
        manifest = Manifest(
            n_docs=n_docs, n_passages=n_live, corpus_fingerprint="", stores=list(self.params.stores),
            params={**asdict(self.params), "analyzer": DEFAULT_ANALYZER.name}, files=files,
            generation=self.gen, data=f"gen-{self.gen:06d}", previous=self.old.data if self.old is not None else "",
            segments=entries, sql=self.sql_file)
        try:
            return publish_segments(self.out, self.moves, manifest, self.old)
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)


def check_document_stream(documents: object) -> None:
    """A write's documents must be an iterable of Document, not one Document or one string."""
    if isinstance(documents, (str, bytes, Document)):
        raise ConfigError(f"documents must be an iterable of Document, got a single {type(documents).__name__}")


def batched(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    """Lists of up to `n` consecutive items (a stream read in bounded memory)."""
    batch: list[Any] = []
    for x in items:
        batch.append(x)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


class Index:
    """An opened, verified index directory: the SQL store plus its passage stores (bm25, dense, ngram, ...)."""

    def __init__(self, root: Path, manifest: Manifest, store: SQLStore, segments: Sequence[Segment],
                 stores: dict[str, Store], encoders: Encoders, stamp: tuple[int, int, int] | None = None) -> None:
        self.root = root
        self.manifest = manifest
        self.stamp = stamp  # manifest_stamp at open: a different one on disk means a newer generation
        self.params = _params_from_manifest(manifest)
        self.store = store
        self.segments = list(segments)
        # global rows are the segments' rows in order, deleted ones included (every store shares them)
        self._starts = np.cumsum([0] + [s.n_rows for s in segments]).astype(np.int64)  # [n_segments + 1]
        self.n_rows = int(self._starts[-1])
        lives = [s.live for s in segments]
        self.live = None if all(m is None for m in lives) else np.concatenate(
            [np.ones(s.n_rows, bool) if m is None else m for s, m in zip(segments, lives)])  # [n_rows] bool
        self.encoders = encoders
        self._stores = stores

    @functools.cached_property
    def ids(self) -> np.ndarray:
        """[n_rows] str: every row's passage id (built on first use: 40 MB at 1M rows, which an open skips)."""
        return np.concatenate([s.ids for s in self.segments]) if self.segments else np.empty(0, "U1")

    @functools.cached_property
    def hashes(self) -> np.ndarray:
        """[n_rows] str: every row's passage content hash."""
        return np.concatenate([s.hashes for s in self.segments]) if self.segments else np.empty(0, "U1")

    def _row_maps(self, rows: Sequence[int]) -> tuple[list[str], list[str]]:
        """Passage ids and content hashes of global `rows`, read from their segments' row maps."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_rows):
            raise ConfigError(f"rows must be in [0, {self.n_rows})")
        seg = np.searchsorted(self._starts, rows, side="right") - 1
        local = rows - self._starts[seg]
        ids = [str(self.segments[g].ids[r]) for g, r in zip(seg.tolist(), local.tolist())]
        hashes = [str(self.segments[g].hashes[r]) for g, r in zip(seg.tolist(), local.tolist())]
        return ids, hashes

    def holds_document(self, doc_id: str) -> bool:
        """Whether this generation has a live passage of document `doc_id` (the document store is shared by
        generations, updated in place, so it may already hold documents a newer generation added)."""
        want = [doc_id, f"{doc_id}#0"]  # a document's passage ids (indexers.ingest.split_passages)
        return any(seg.find(want) for seg in self.segments)

    def filter_mask(self, filters: Mapping[str, Any] | None) -> np.ndarray | None:
        """bool [n_rows]: the live rows whose document matches `filters` (Haystack's filter syntax, evaluated
        by the SQL store: indexers.filters); None for no filter. Every store's search honours it exactly."""
        if filters is None:
            return None
        ids = np.asarray(self.store.filter_passage_ids(filters), dtype=str)
        mask = np.zeros(self.n_rows, dtype=bool)
        off = 0
        for seg in self.segments:
            mask[off + seg.live_rows_of(ids)] = True
            off += seg.n_rows
        return mask

    def live_rows(self) -> np.ndarray:
        """The global rows of live (not deleted) passages, ascending."""
        return np.arange(self.n_rows, dtype=np.int64) if self.live is None else np.flatnonzero(self.live)

    @property
    def stores(self) -> tuple[str, ...]:
        """The names of this index's passage stores, in build order."""
        return self.params.stores

    def store_of(self, name: str) -> Store:
        """The loaded store called `name`; a store this index lacks is a ConfigError naming the ones it has."""
        st = self._stores.get(name)
        if st is None:
            raise ConfigError(f"this index has no {name} store (it has {', '.join(self.stores)}); rebuild with "
                              f"`adarag index CORPUS --out {self.root} --rebuild --stores ...`")
        return st

    def search_stores(self, names: Sequence[str], queries: Sequence[str], k: int, mask: np.ndarray | None = None,
                      threads: int | None = None) -> list[list[Ranked]]:
        """Per store in `names`, per query: its top-k (rows, scores), `mask` honoured. A sharded index runs the
        stores' shard work together, in fewer round trips; here it is one store after the other."""
        out = []
        for name in names:
            st = self.store_of(name)
            out.append(st.search_batch(st.prepare(queries, threads), k, mask))
        return out

    def _core(self, name: str):
        st = self._stores.get(name)
        return None if st is None else st.index

    @property
    def bm25(self) -> BM25Index | None:
        """The BM25 postings (None without a bm25 store); prefer `store_of("bm25")`."""
        return self._core("bm25")

    @property
    def dense(self) -> DenseIndex | None:
        """The dense embeddings and FAISS index (None without a dense store); prefer `store_of("dense")`."""
        return self._core("dense")

    @property
    def ngram(self) -> NgramIndex | None:
        """The FM-index (None without an ngram store); prefer `store_of("ngram")`."""
        return self._core("ngram")

    @property
    def generation(self) -> int:
        """The published generation this object serves (0 for a format-1 index)."""
        return self.manifest.generation

    def is_stale(self) -> bool:
        """True when another writer has published a newer generation since this index was opened (one stat)."""
        return manifest_stamp(self.root) != self.stamp

    def embedder(self, threads: int | None = None):
        """The query embedder matching the one the index was built with (loaded on first use)."""
        return self.encoders.embedder(threads)

    def ngram_tokenizer(self):
        """The generator tokenizer the n-gram store was built with (loaded on first use)."""
        return self.encoders.ngram_tokenizer()

    def ngram_tokens(self, text: str) -> list[int]:
        """Token ids of a query as the n-gram store sees text (same leading-space convention as the build)."""
        return self.encoders.ngram_tokens([text])[0]

    def share_models(self, other: "Index") -> None:
        """Reuse `other`'s loaded query embedder and tokenizer when they are the ones this index needs."""
        self.encoders.share(other.encoders)

    def hits(self, rows: Sequence[int], scores: Sequence[float]) -> list[Hit]:
        """Turn (row, score) pairs into Hits with passage text from the SQL store, in the given order."""
        pids, hashes = self._row_maps(rows)
        stored = self.store.stored_passages(pids)
        by_id = {pid: p for pid, (p, _) in stored.items()}
        stale = [pid for pid, h in zip(pids, hashes) if pid not in stored or stored[pid][1] != h]
        if stale:  # a writer changed them after this generation was published: read the pre-images
            by_id.update(self.store.pre_image_passages(stale))
        out = []
        for pid, s in zip(pids, scores):
            p = by_id.get(pid)
            if p is None:
                raise IndexFormatError(f"passage {pid!r} is in the index files but not in the SQL store: the index is "
                                       f"out of sync; rebuild it with `adarag index CORPUS --out {self.root} --rebuild`")
            out.append(Hit(id=p.id, score=float(s), doc_id=p.doc_id, title=p.title, text=p.text,
                           start=p.start, end=p.end))
        return out

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_index(root: str | Path, *, verify: bool = True) -> Index:
    """Open the index's published generation; `verify` checks the files against the manifest first (sizes, and
    checksums of files changed since last verified: index_dir.verify_index).

    A writer publishing while this opens can remove the generation being read; the open then retries on the
    new one.
    """
    root = Path(root).expanduser().resolve()
    recover_swap(root)
    for attempt in range(3):
        stamp = manifest_stamp(root)
        try:
            return _open(root, stamp, verify)
        except IndexFormatError:
            if attempt == 2 or manifest_stamp(root) == stamp:
                raise
            log.info("%s changed while opening it: opening the new generation", root)
    raise AssertionError("unreachable")


def _recover_sql(root: Path, manifest: Manifest, store: SQLStore) -> None:
    """Roll back what a killed writer left in the document store, if no writer is at work now (its lock is
    free); a read-only index, or one being written, is left to its next writer."""
    pending = store.pending_generations()
    if not any(g > manifest.generation for g in pending):
        return
    try:
        with WriteLock(root, wait=0):
            if read_manifest(root).generation != manifest.generation:
                return  # published meanwhile: the caller retries on the new generation
            for g in store.pending_generations():
                if g > manifest.generation:
                    log.warning("%s: rolling back the document store changes of an interrupted write", root)
                    store.rollback(g)
    except (IndexBusyError, OSError):
        pass


def _open(root: Path, stamp: tuple[int, int, int] | None, verify: bool) -> Index:
    manifest = verify_index(root) if verify else read_manifest(root)
    params = _params_from_manifest(manifest)
    segments = _segments_of(root, manifest)
    encoders = Encoders(params.dense, params.ngram)
    env = LoadEnv(root, encoders, manifest.params)
    state = root / manifest.data if manifest.version >= 3 else None
    stores = {name: store_kind(name).open([s.part(name) for s in segments],
                                          state / name if state is not None and (state / name).is_dir() else None, env)
              for name in params.stores}
    n_rows = sum(s.n_rows for s in segments)
    for name, st in stores.items():
        if st.n_rows != n_rows:
            raise IndexFormatError(f"the {name} store of {root} has {st.n_rows} rows, the index {n_rows}; "
                                   "rebuild the index")
    if manifest.version >= 3 and manifest.sql and not (root / manifest.sql).is_file():
        raise IndexFormatError(f"index {root} is missing {manifest.sql} (its document store); rebuild it with "
                               f"`adarag index CORPUS --out {root} --rebuild`")
    store = SQLStore(_sql_of(root, manifest, params), namespace=params.sql_namespace)
    if manifest.version >= 3:
        _recover_sql(root, manifest, store)
        done = store.generation()
        if done != manifest.generation and manifest.generation not in store.pending_generations():
            store.close()
            raise IndexFormatError(
                f"the document store of index {root} no longer matches it (documents changed outside adarag, or "
                f"the store was restored from another backup: it is at generation {done}, the index at "
                f"{manifest.generation}); rebuild with `adarag index CORPUS --out {root} --rebuild`")
    elif params.sql_url is not None and store.fingerprint() != manifest.corpus_fingerprint:
        store.close()
        raise IndexFormatError(
            f"the SQL store at {params.sql_url} no longer matches index {root} (documents changed outside adarag "
            f"or a build was interrupted); rebuild with `adarag index CORPUS --out {root} --sql URL --rebuild`"
        )
    return Index(root, manifest, store, segments, stores, encoders, stamp)


def params_from_saved(saved: Mapping[str, Any]) -> BuildParams:
    """The BuildParams that `asdict(params)` saved (a manifest's `params`, a sharded index's); IndexFormatError
    if any is missing or ill-typed. For indexers.shards, which records one set for all its shards."""
    return _params_from_manifest(Manifest(n_docs=0, n_passages=0, corpus_fingerprint="", stores=[], params=dict(saved)))
