"""Looking at an index without serving it: `adarag check INDEX` verifies everything that can be verified,
Lucene CheckIndex-style; `adarag stats INDEX` says what it holds, from the manifest alone.

Opening an index checks its manifest, every file's size, the xxh3 checksum of every file changed since it was
last verified (index_dir.verify_index's stat cache) and each store's row count; this adds what is too slow or
too rare to pay on every open: every byte hashed again, every live row's passage id and content hash against
the document store, live passage ids unique, and the passage and document counts.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from indexers.errors import IndexFormatError
from indexers.index import open_index
from indexers.index_dir import read_manifest, verify_index

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
    verify_index(Path(root).expanduser().resolve(), full=True)  # every byte, whatever the stat cache says
    with open_index(root, verify=False) as ix:
        fix = f"rebuild it with `adarag index CORPUS --out {ix.root} --rebuild`"
        live = ix.live_rows()
        ids = [str(i) for i in ix.ids[live]]
        if len(set(ids)) != len(ids):
            raise IndexFormatError(f"index {ix.root}: a passage id is live in two rows; {fix}")
        stored = ix.store.passage_hashes(ids)
        bad = next((i for i, (pid, h) in enumerate(zip(ids, ix.hashes[live].tolist())) if stored.get(pid) != h), None)
        if bad is not None:
            raise IndexFormatError(f"index {ix.root}: row {int(live[bad])} (passage {ids[bad]!r}) is not what the "
                                   f"document store holds under that id; {fix}")
        n_stored = ix.store.count_passages()
        if n_stored != len(ids):
            raise IndexFormatError(f"index {ix.root}: the document store holds {n_stored} passages, the segments "
                                   f"{len(ids)} live rows; {fix}")
        n_docs = ix.store.count_documents()
        if n_docs != ix.manifest.n_docs:
            raise IndexFormatError(f"index {ix.root}: the document store holds {n_docs} documents, the manifest "
                                   f"says {ix.manifest.n_docs}; {fix}")
        m = ix.manifest
        return CheckReport(str(ix.root), m.generation, len(m.files), sum(f["bytes"] for f in m.files.values()),
                           n_docs, m.n_passages, time.perf_counter() - t)


def index_stats(root: str | Path) -> dict:
    """Counts, segments, bytes per store and build parameters of index `root`, read from its manifest (no data
    file is opened, so it is instant at any size)."""
    root = Path(root).expanduser().resolve()
    m = read_manifest(root)
    parts: dict[str, int] = {}
    for rel, meta in m.files.items():
        bits = rel.split("/")
        if m.version >= 3:
            bits = bits[1:]  # segment or generation folder
            if bits and bits[0].startswith("del-"):
                bits = bits[1:]
        head = bits[0] if len(bits) > 1 else {"docs.sqlite": "sql"}.get(bits[-1], "row maps")
        parts[head] = parts.get(head, 0) + meta["bytes"]
    if m.version >= 3 and m.sql and (root / m.sql).is_file():
        parts["sql"] = (root / m.sql).stat().st_size
    segments = m.segments or [{"n_rows": m.n_passages, "n_deleted": 0}]
    return {"index": str(root), "format": m.format, "version": m.version, "generation": m.generation,
            "n_docs": m.n_docs, "n_passages": m.n_passages, "deleted": sum(s["n_deleted"] for s in segments),
            "segments": len(segments), "segment_rows": [s["n_rows"] for s in segments], "stores": m.stores,
            "bytes": dict(sorted(parts.items())), "total_bytes": sum(parts.values()), "params": m.params,
            "adarag_version": m.adarag_version, "created": m.created}
