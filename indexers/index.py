"""Build an index directory from documents (SQL + BM25 + dense stores) and open it again.

A build holds the index's write lock (indexers.lock) and writes a new generation that is published by one
atomic manifest replace (indexers.index_dir): the previous generation stays loadable until the new one is
complete. Building into an existing index adds/updates documents incrementally: the SQL store is copied and
upserted (not rebuilt), unchanged passages keep their embeddings, and BM25 statistics are recomputed (they
are global, and cheap).
"""
from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy.engine import URL

from indexers.bm25 import BM25Index, BM25Params
from indexers.dense import DenseIndex, DenseParams
from indexers.errors import ConfigError, CorpusError, IndexFormatError
from indexers.index_dir import (
    Manifest,
    clean_leftovers,
    data_dir,
    index_state,
    manifest_stamp,
    new_stage,
    publish,
    read_manifest,
    recover_swap,
    verify_index,
)
from indexers.lock import DEFAULT_LOCK_WAIT, WriteLock
from indexers.ingest import SplitConfig, passage_hash
from indexers.ngram import NgramIndex, NgramParams
from indexers.sql_store import SQLStore, copy_sqlite
from indexers.stores import STORE_KINDS, Store, store_kind
from indexers.stores.base import BuildEnv, LoadEnv, Previous
from indexers.stores.encoders import Encoders
from indexers.text import DEFAULT_ANALYZER
from indexers.types import Document, Hit

__all__ = ["STORES", "BuildParams", "BuildReport", "Index", "build_index", "open_index"]

log = logging.getLogger(__name__)

STORES = tuple(STORE_KINDS)
_SQLITE = "docs.sqlite"
_IDS = "ids.npy"
_HASHES = "passage_hashes.npy"


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

    def __post_init__(self) -> None:
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
        )
    except (KeyError, TypeError, ValueError) as e:
        raise IndexFormatError(f"the manifest of this index has bad build parameters ({type(e).__name__}: {e}); "
                               "rebuild it with `adarag index CORPUS --out INDEX --rebuild`") from None


def _sql_url(data: Path, params: BuildParams) -> str | URL:
    """The SQL store's URL: the user's, or the SQLite file in `data` (built with URL.create, so a `?` or `%`
    in the path stays part of the file name instead of becoming a URL query)."""
    return params.sql_url or URL.create("sqlite", database=str(data / _SQLITE))


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

    When `out` already holds an index its build parameters are kept (pass `rebuild=True` to change them).
    `delete` names documents to remove in the same atomic step (unknown ids are ignored). `out` must be new,
    empty or an adarag index: nothing else is ever written over. The write holds the index's lock (waiting
    up to `lock_wait` seconds for another writer) and publishes a new generation atomically (indexers.index_dir).
    `embedder` overrides loading the model named in `params.dense.embedder` (tests use a hash embedder).
    """
    if isinstance(delete, str):
        raise ConfigError("delete must be a list of document ids, not one string")
    out, created = _open_out(out)
    published = False
    try:
        with WriteLock(out, wait=lock_wait):
            rep = _build_locked(documents, out, params, rebuild, threads, progress, embedder, delete)
            published = True
            return rep
    finally:
        if created and not published and index_state(out) == "empty":  # a failed first build leaves no folder
            shutil.rmtree(out, ignore_errors=True)


def _build_locked(documents, out: Path, params, rebuild, threads, progress, embedder, delete) -> BuildReport:
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
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
    stage = new_stage(out)
    try:
        if old is not None and not rebuild and params.sql_url is None:
            copy_sqlite(data_dir(out, old) / _SQLITE, stage / _SQLITE)
        store = SQLStore(_sql_url(stage, params), namespace=params.sql_namespace)
        try:
            docs = list(documents)
            summary = store.upsert_documents(docs, split=SplitConfig(params.passage_words, params.passage_overlap))
            n_deleted = store.delete_documents(delete) if delete else 0
            if rebuild and params.sql_url is not None:
                # An external store is synced, not dropped: a failed rebuild must not lose what it holds.
                keep = {d.id for d in docs}
                stale = [p.doc_id for p in store.iter_passages() if p.doc_id not in keep]
                store.delete_documents(sorted(set(stale)))
            if store.count_passages() == 0:
                raise CorpusError("the corpus has no passages with text: nothing to index")
            passages = list(store.iter_passages())
            fingerprint = store.fingerprint()
            n_docs = store.count_documents()
        finally:
            store.close()
        seconds["sql"] = time.perf_counter() - t0
        if old is not None and not rebuild and not (summary.added or summary.updated or n_deleted) \
                and fingerprint == old.corpus_fingerprint:  # nothing changed: no new generation to publish
            shutil.rmtree(stage, ignore_errors=True)
            seconds["total"] = time.perf_counter() - t0
            return BuildReport(old, 0, 0, len(summary.unchanged), 0, seconds, 0)
        ids = np.array([p.id for p in passages])
        hashes = np.array([passage_hash(p) for p in passages])
        np.save(stage / _IDS, ids, allow_pickle=False)
        np.save(stage / _HASHES, hashes, allow_pickle=False)
        saved = np.load(stage / _IDS, allow_pickle=False)
        if saved.tolist() != [p.id for p in passages]:  # the row -> id map every store relies on must round-trip
            bad = next(p.id for p, s in zip(passages, saved.tolist()) if p.id != s)
            raise CorpusError(f"passage id {bad!r} does not survive being saved (control characters?): rename it")

        encoders = Encoders(params.dense, params.ngram, embedder=embedder, threads=threads)
        previous = None
        if old is not None and not rebuild:
            prev_data = data_dir(out, old)
            previous = Previous(prev_data, tuple(old.stores), prev_data / _IDS, prev_data / _HASHES)
        env = BuildEnv(encoders, hashes, previous, progress)
        computed: dict[str, int] = {}
        for name in params.stores:
            t = time.perf_counter()
            computed[name] = store_kind(name).build(passages, stage / name, getattr(params, name), env)
            seconds[name] = time.perf_counter() - t
        n_embedded = computed.get("dense", 0)  # BuildReport.embedded: passages the dense store embedded anew

        manifest = publish(out, stage, Manifest(
            n_docs=n_docs,
            n_passages=len(passages),
            corpus_fingerprint=fingerprint,
            stores=list(params.stores),
            params={**asdict(params), "analyzer": DEFAULT_ANALYZER.name},
        ), old)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    seconds["total"] = time.perf_counter() - t0
    return BuildReport(
        manifest, len(summary.added), len(summary.updated), len(summary.unchanged), n_embedded, seconds, n_deleted
    )


class Index:
    """An opened, verified index directory: the SQL store plus its passage stores (bm25, dense, ngram, ...)."""

    def __init__(self, root: Path, manifest: Manifest, store: SQLStore, ids: np.ndarray,
                 stores: dict[str, Store], encoders: Encoders, stamp: tuple[int, int, int] | None = None) -> None:
        self.root = root
        self.manifest = manifest
        self.stamp = stamp  # manifest_stamp at open: a different one on disk means a newer generation
        self.params = _params_from_manifest(manifest)
        self.store = store
        self.ids = ids  # [n_passages] str: row -> passage id, shared by every store
        self.encoders = encoders
        self._stores = stores

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
        pids = [str(self.ids[r]) for r in rows]
        by_id = {p.id: p for p in self.store.get_passages(pids)}
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
    """Open the index's published generation; `verify` checks every file's sha256 against the manifest first.

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


def _open(root: Path, stamp: tuple[int, int, int] | None, verify: bool) -> Index:
    manifest = verify_index(root) if verify else read_manifest(root)
    params = _params_from_manifest(manifest)
    data = data_dir(root, manifest)
    try:
        ids = np.load(data / _IDS, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise IndexFormatError(f"{data / _IDS}: cannot read ({e}); rebuild the index") from e
    if len(ids) != manifest.n_passages:
        raise IndexFormatError(f"{data / _IDS} has {len(ids)} rows, the manifest says {manifest.n_passages}; "
                               "rebuild the index")
    encoders = Encoders(params.dense, params.ngram)
    env = LoadEnv(root, encoders, manifest.params)
    stores = {name: store_kind(name).load(data / name, env) for name in params.stores}
    for name, st in stores.items():
        if st.n_rows != len(ids):
            raise IndexFormatError(f"the {name} store of {root} has {st.n_rows} rows, the index {len(ids)}; "
                                   "rebuild the index")
    store = SQLStore(_sql_url(data, params), namespace=params.sql_namespace)
    if params.sql_url is not None and store.fingerprint() != manifest.corpus_fingerprint:
        store.close()
        raise IndexFormatError(
            f"the SQL store at {params.sql_url} no longer matches index {root} (documents changed outside adarag "
            f"or a build was interrupted); rebuild with `adarag index CORPUS --out {root} --sql URL --rebuild`"
        )
    return Index(root, manifest, store, ids, stores, encoders, stamp)
