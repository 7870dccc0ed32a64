"""Write one shard of a sharded index: an ordinary build_index over its documents, plus its collection state.

The same callable runs in-process and as a Ray Data actor (`map_groups` with a callable class: the embedder
loads once per actor, on a GPU when the actor has one). Besides the shard's index it writes, into the new
state folder, each new segment's row write sequences (so rows order across shards as in one index) and the
shard's live BM25 df table (summed over the shards into collection-wide statistics by the writer).
"""
from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from indexers.bm25 import load_bm25
from indexers.bm25_segments import BM25Deleted, live_dfs
from indexers.errors import IndexFormatError
from indexers.index import BuildParams, batched, build_index, open_index
from indexers.index_dir import read_manifest
from indexers.ingest import content_hash, doc_id_of
from indexers.segments import Segment, live_rows_of, load_segment
from indexers.shards.layout import SEQ_BITS
from indexers.stores.encoders import Encoders
from indexers.types import Document

__all__ = ["ShardJob", "ShardResult", "ShardBuilder", "shard_segments", "load_df_table", "read_routed", "write_routed",
           "SEQ", "BM25_DIR"]

SEQ = "seq"
BM25_DIR = "bm25"
_TERMS, _DF, _META = "terms.json", "df.npy", "meta.json"


@dataclass(frozen=True)
class ShardJob:
    """What a write asks of one shard: write into folder `out` (a clone of `previous`, or new)."""

    shard: int
    name: str
    out: str
    previous: str  # the shard's folder in the previous generation ("" for none)
    old_state: str  # the previous state folder ("" for none)
    state: str  # this write's state folder
    rebuild: bool
    delete: tuple[str, ...] = ()
    docs: str = ""  # JSONL of this write's documents routed here, in write order ("" for none)
    n_docs: int = 0


@dataclass(frozen=True)
class ShardResult:
    """What a shard write did; `dir` is "" when the shard ended up holding no document."""

    shard: int
    dir: str
    generation: int
    n_docs: int = 0
    n_passages: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    embedded: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    worker: str = ""  # host:pid of the process that wrote it


def shard_segments(root: Path) -> list[Segment]:
    """The segments (row maps, deletions) of shard index `root`'s published generation."""
    m = read_manifest(root)
    return [load_segment(root / e["name"], e["name"], e["n_rows"], e["deleted"], e["n_deleted"]) for e in m.segments]


def load_df_table(directory: Path) -> tuple[dict[str, int], int, int]:
    """(term -> live df, live rows, live tokens) saved by a ShardBuilder."""
    try:
        meta = json.loads((directory / _META).read_text(encoding="utf-8"))
        terms = json.loads((directory / _TERMS).read_text(encoding="utf-8"))
        df = np.load(directory / _DF, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise IndexFormatError(f"{directory}: cannot read the shard's BM25 statistics ({e}); rebuild the index") from e
    if len(terms) != len(df):
        raise IndexFormatError(f"{directory}: {len(terms)} terms, {len(df)} counts; rebuild the index")
    return dict(zip(terms, df.tolist())), int(meta["n_rows"]), int(meta["total_length"])


def _save_df_table(directory: Path, df: dict[str, int], n_rows: int, total: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    terms = [t for t, c in df.items() if c > 0]
    np.save(directory / _DF, np.array([df[t] for t in terms], dtype=np.int64), allow_pickle=False)
    (directory / _TERMS).write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")
    (directory / _META).write_text(json.dumps({"n_rows": n_rows, "total_length": total}), encoding="utf-8")


class ShardBuilder:
    """Builds the shards of one write: `build` one shard, or call it on a Ray Data batch of shards."""

    def __init__(self, params: BuildParams, jobs: dict[int, ShardJob], embedder: Any = None,
                 threads: int | None = None) -> None:
        self.params, self.jobs, self.threads = params, jobs, threads
        self.embedder = embedder  # preset (tests' hash embedder); else loaded once, on first use

    def _embedder_now(self) -> Any:
        if self.embedder is None and "dense" in self.params.stores:
            self.embedder = Encoders(self.params.dense, self.params.ngram, threads=self.threads).embedder()
        return self.embedder

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A Ray Data batch of shard numbers; one result per row. Each reads its documents from its job's
        routed file (a shared filesystem), so no corpus passes through the object store."""
        return {"result": np.array([json.dumps(self.build(int(s)).__dict__) for s in batch["shard"].tolist()])}

    def build(self, shard: int) -> ShardResult:
        """Write shard `shard` (its job) over the documents routed to it, streamed from the job's file."""
        return replace(self._build(shard), worker=f"{socket.gethostname()}:{os.getpid()}")

    def _build(self, shard: int) -> ShardResult:
        job = self.jobs[shard]
        out, state = Path(job.out), Path(job.state)
        prev = Path(job.previous) if job.previous else None
        changed = self._changed(out if prev is not None else None, job.docs)
        if prev is not None and not job.n_docs and job.delete:
            with open_index(out, verify=False) as idx:
                left = set(idx.store.document_ids()) - set(job.delete)
            if not left:  # every document of the shard is deleted: it becomes an empty shard
                return ShardResult(shard, "", 0, deleted=len(set(job.delete)))
        if prev is None and not job.n_docs:
            return ShardResult(shard, "", 0)
        docs = (d for _, d in read_routed(job.docs))
        rep = build_index(docs, out, None if prev is not None else self.params, rebuild=job.rebuild,
                          progress=False, embedder=self._embedder_now(), delete=job.delete, lock_wait=0)
        m = rep.manifest
        self._write_seq(out, prev, job, changed)
        if "bm25" in self.params.stores:
            segs = shard_segments(out)
            pairs = [(load_bm25(s.part("bm25").directory),
                      BM25Deleted.load(s.part("bm25").deleted) if s.part("bm25").deleted else None) for s in segs]
            df, n_rows, total = live_dfs(pairs)
            _save_df_table(state / BM25_DIR / job.name, dict(df), n_rows, total)
        return ShardResult(shard, out.name, m.generation, m.n_docs, m.n_passages, rep.added, rep.updated,
                           rep.unchanged, rep.deleted, rep.embedded, dict(rep.seconds))

    @staticmethod
    def _changed(out: Path | None, path: str) -> dict[str, int]:
        """doc id -> sequence of the documents this write (re)writes: new ones and changed ones (content hash);
        one index moves exactly these to its end, so they take this write's sequence numbers."""
        if out is None:
            return {d.id: q for q, d in read_routed(path)}
        changed: dict[str, int] = {}
        with open_index(out, verify=False) as idx:
            for batch in batched(read_routed(path), 1000):
                stored = {d.id: content_hash(d)
                          for d in idx.store.get_documents([d.id for _, d in batch], missing="skip")}
                changed.update((d.id, q) for q, d in batch if stored.get(d.id) != content_hash(d))
        return changed

    def _write_seq(self, out: Path, prev: Path | None, job: ShardJob, changed: dict[str, int]) -> None:
        """seq/<shard>/<segment>.npy for each segment: the previous state's for a segment it had, else computed."""
        folder = Path(job.state) / SEQ / job.name
        folder.mkdir(parents=True, exist_ok=True)
        old_folder = Path(job.old_state) / SEQ / job.name if job.old_state and prev is not None else None
        old_map: dict[str, int] | None = None
        for seg in shard_segments(out):
            src = old_folder / f"{seg.name}.npy" if old_folder is not None else None
            if src is not None and src.is_file():
                (folder / src.name).hardlink_to(src)
                continue
            seq = np.empty(seg.n_rows, np.int64)
            for r, pid in enumerate(seg.ids.tolist()):
                doc = pid if pid in changed else doc_id_of(pid)
                if doc in changed:
                    seq[r] = (changed[doc] << SEQ_BITS) | (0 if doc == pid else int(pid.rpartition("#")[2]))
                else:  # a live row of an older segment, copied by a merge
                    if old_map is None:
                        old_map = _live_seq(prev, old_folder)
                    if pid not in old_map:
                        raise IndexFormatError(f"shard {job.name}: passage {pid!r} has no write sequence; rebuild "
                                               "the index with --rebuild")
                    seq[r] = old_map[pid]
            np.save(folder / f"{seg.name}.npy", seq, allow_pickle=False)


def _live_seq(prev: Path | None, folder: Path | None) -> dict[str, int]:
    """passage id -> write sequence of the live rows of the shard's previous generation."""
    if prev is None or folder is None:
        return {}
    out: dict[str, int] = {}
    for seg in shard_segments(prev):
        seq = np.load(folder / f"{seg.name}.npy", allow_pickle=False)
        rows = live_rows_of(seg)
        out.update(zip(seg.ids[rows].tolist(), seq[rows].tolist()))
    return out


def write_routed(f: TextIO, seq: int, doc: Document) -> None:
    """One routed document as a JSONL line: its write sequence and its fields."""
    f.write(json.dumps([seq, {"id": doc.id, "title": doc.title, "text": doc.text, "metadata": doc.metadata}],
                       ensure_ascii=False) + "\n")


def read_routed(path: str) -> Iterator[tuple[int, Document]]:
    """(sequence, document) of a routed file, in write order; nothing for ""."""
    if not path:
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            q, rec = json.loads(line)
            yield int(q), Document(id=rec["id"], text=rec["text"], title=rec.get("title", ""),
                                   metadata=rec.get("metadata") or {})

