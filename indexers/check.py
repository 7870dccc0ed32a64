"""Looking at an index without serving it: `adarag check INDEX` verifies everything that can be verified,
Lucene CheckIndex-style; `adarag stats INDEX` says what it holds, from the manifest alone.

Opening an index already checks its manifest, every file's size and xxh3 checksum and each store's row count;
this adds what is too slow or too rare to pay on every open: the row -> passage id map against the document
store, passage ids unique, and the document count against the manifest.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from indexers.errors import IndexFormatError
from indexers.index import open_index
from indexers.index_dir import read_manifest

__all__ = ["CheckReport", "check_index", "index_stats"]


@dataclass(frozen=True)
class CheckReport:
    """What a full check read: the generation, how many files and bytes, and how long it took."""

    index: str
    generation: int
    files: int
    bytes: int
    n_docs: int
    n_passages: int
    seconds: float


def check_index(root: str | Path) -> CheckReport:
    """Verify index `root` completely; raise IndexFormatError naming the first problem found."""
    t = time.perf_counter()
    with open_index(root, verify=True) as ix:
        fix = f"rebuild it with `adarag index CORPUS --out {ix.root} --rebuild`"
        sql_ids = ix.store.passage_ids()
        ids = [str(i) for i in ix.ids]
        if ids != sql_ids:
            n = next((i for i, (a, b) in enumerate(zip(ids, sql_ids)) if a != b), min(len(ids), len(sql_ids)))
            raise IndexFormatError(f"index {ix.root}: row {n} of ids.npy is not the document store's passage {n} "
                                   f"({len(ids)} rows, {len(sql_ids)} stored passages); {fix}")
        if len(set(ids)) != len(ids):
            raise IndexFormatError(f"index {ix.root}: ids.npy repeats a passage id; {fix}")
        n_docs = ix.store.count_documents()
        if n_docs != ix.manifest.n_docs:
            raise IndexFormatError(f"index {ix.root}: the document store holds {n_docs} documents, the manifest "
                                   f"says {ix.manifest.n_docs}; {fix}")
        m = ix.manifest
        return CheckReport(str(ix.root), m.generation, len(m.files), sum(f["bytes"] for f in m.files.values()),
                           n_docs, m.n_passages, time.perf_counter() - t)


def index_stats(root: str | Path) -> dict:
    """Counts, bytes per store and build parameters of index `root`, read from its manifest (no data file
    is opened, so it is instant at any size)."""
    root = Path(root).expanduser().resolve()
    m = read_manifest(root)
    parts: dict[str, int] = {}
    for rel, meta in m.files.items():
        head = rel.split("/", 1)[0] if "/" in rel else {"docs.sqlite": "sql"}.get(rel, "row maps")
        parts[head] = parts.get(head, 0) + meta["bytes"]
    return {"index": str(root), "format": m.format, "version": m.version, "generation": m.generation,
            "n_docs": m.n_docs, "n_passages": m.n_passages, "deleted": 0, "segments": 1, "stores": m.stores,
            "bytes": dict(sorted(parts.items())), "total_bytes": sum(parts.values()), "params": m.params,
            "adarag_version": m.adarag_version, "created": m.created}
