"""The on-disk sharded index: N ordinary indexes (shards) and their collection-wide state behind `shards.json`.

Layout of a sharded index directory (format `adarag-shards`, version 1)::

    shards.json            format, version, generation, the shards in order (name, folder, generation; "" for
                           an empty shard), the state folder, build params, counts, next write sequence, sha256
    write.lock             the writers' lock (indexers.lock), as in an ordinary index
    shard-002.g000004/     shard 2 as generation 4 left it: an ordinary format-3 index (indexers.index)
    state-000004/          collection-wide state: bm25/ (live df per term, summed over the shards, and the
                           BM25Global they give) and seq/<shard>/<segment>.npy (each row's write sequence)

Documents go to shard `xxh64(doc id) % N`. Copy on write: a write clones each shard it changes into a new
folder (hard links for the immutable segment files, an SQLite backup of its document store), writes there,
and publishes by atomically replacing `shards.json`, written last; a write killed at any moment leaves the
previous generation whole and loadable. Folders neither the new nor the previous manifest names are removed
by the next writer (readers still on the previous generation keep theirs).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import xxhash

from indexers.errors import ConfigError, IndexFormatError
from indexers.artifact import adarag_version, manifest_checksum
from indexers.index_dir import MANIFEST
from indexers.sql_store import copy_sqlite

__all__ = ["SHARDS", "FORMAT", "ShardEntry", "ShardsManifest", "shard_of", "is_sharded", "read_shards",
           "write_shards", "shards_stamp", "shard_dir_name", "state_dir_name", "clone_shard", "remove_unreferenced",
           "check_n_shards", "SEQ_BITS"]

SHARDS = "shards.json"
FORMAT = "adarag-shards"
_VERSION = 1
_SHARD = re.compile(r"shard-(\d{3,})\.g(\d{6,})")
_STATE = re.compile(r"state-(\d{6,})")
_SQLITE = re.compile(r"docs-\d{6,}\.sqlite")
SEQ_BITS = 20
"""A row's write sequence is (document sequence << SEQ_BITS) | passage number: rows sort as one index holds them."""


@dataclass(frozen=True)
class ShardEntry:
    """One shard: its folder ("" while it holds no document) and the generation of that index."""

    name: str
    dir: str
    generation: int


@dataclass(frozen=True)
class ShardsManifest:
    """What `shards.json` holds."""

    n_shards: int
    shards: list[ShardEntry]
    state: str
    params: dict[str, Any]
    n_docs: int
    n_passages: int
    next_seq: int  # the next document sequence number (documents are numbered in write order)
    generation: int
    format: str = FORMAT
    version: int = _VERSION
    adarag_version: str = field(default_factory=adarag_version)
    created: float = field(default_factory=time.time)


def shard_of(doc_id: str, n_shards: int) -> int:
    """The shard a document lives in: a stable hash of its id (the same on every machine and Python)."""
    return xxhash.xxh64_intdigest(doc_id.encode("utf-8", "surrogatepass")) % n_shards


def shard_dir_name(shard: int, generation: int) -> str:
    return f"shard-{shard:03d}.g{generation:06d}"


def state_dir_name(generation: int) -> str:
    return f"state-{generation:06d}"


def is_sharded(root: str | Path) -> bool:
    """Whether `root` holds a sharded index (a `shards.json`)."""
    return (Path(root) / SHARDS).is_file()


def shards_stamp(root: Path) -> tuple[int, int, int] | None:
    """(inode, mtime ns, size) of `shards.json`: changes whenever a write publishes, costs one stat."""
    try:
        st = os.stat(Path(root) / SHARDS)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def read_shards(root: Path) -> ShardsManifest:
    """Read and check `shards.json` (its own sha256, format, every shard folder name); IndexFormatError if bad."""
    path = Path(root) / SHARDS
    fix = f"rebuild it with `adarag index CORPUS --out {root} --shards N --rebuild`"
    if not path.is_file():
        raise IndexFormatError(f"{root} has no {SHARDS}: it is not a sharded adarag index; build one with "
                               f"`adarag index CORPUS --out {root} --shards N`")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexFormatError(f"{path} is unreadable ({e}); {fix}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise IndexFormatError(f"{path} is not an {FORMAT} manifest; {fix}")
    if raw.get("version") != _VERSION:
        raise IndexFormatError(f"{path} is {FORMAT} version {raw.get('version')!r}, this adarag reads {_VERSION}: "
                               "upgrade adarag or rebuild the index")
    if raw.get("checksum") != manifest_checksum(raw):
        raise IndexFormatError(f"{path} is corrupt (its checksum does not match); {fix}")
    try:
        body = {k: v for k, v in raw.items() if k != "checksum"}
        m = ShardsManifest(**{**body, "shards": [ShardEntry(**e) for e in body["shards"]]})
    except TypeError as e:
        raise IndexFormatError(f"{path} is corrupt ({e}); {fix}") from None
    ok = len(m.shards) == m.n_shards >= 1 and _STATE.fullmatch(m.state) is not None and all(
        e.name == f"shard-{i:03d}" and (e.dir == "" or _SHARD.fullmatch(e.dir) is not None)
        for i, e in enumerate(m.shards))
    if not ok:
        raise IndexFormatError(f"{path} is corrupt (bad shard or state entries); {fix}")
    return m


def write_shards(root: Path, m: ShardsManifest) -> None:
    """Publish `m`: write a temporary file, fsync it, rename it over `shards.json`, fsync the folder."""
    raw = asdict(m)
    raw["checksum"] = manifest_checksum(raw)
    tmp = Path(root) / f"{SHARDS}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(raw, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, Path(root) / SHARDS)
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clone_shard(src: Path, dst: Path) -> None:
    """A copy of shard index `src` at `dst` to write the next generation in: hard links for its immutable files,
    an SQLite backup of its document store (updated in place by writes), no lock file."""
    for dirpath, dirnames, filenames in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in filenames:
            if rel == Path(".") and (name == "write.lock" or name.startswith(f"{MANIFEST}.tmp")):
                continue
            if rel == Path(".") and name.startswith("docs-") and ".sqlite" in name:
                if _SQLITE.fullmatch(name):
                    copy_sqlite(src / name, dst / name)
                continue  # its -wal/-shm/-journal: the backup is consistent without them
            os.link(Path(dirpath) / name, dst / rel / name)


def remove_unreferenced(root: Path, keep: set[str], newer_than: int | None = None) -> None:
    """Remove shard and state folders (and temporary manifests of dead writers) that `keep` does not name;
    with `newer_than`, only folders a killed writer made for a later generation than that."""
    for p in Path(root).iterdir():
        if p.name in keep:
            continue
        m = _SHARD.fullmatch(p.name) or _STATE.fullmatch(p.name)
        gen = int(m.group(m.lastindex)) if m else None
        if (gen is not None and (newer_than is None or gen > newer_than)) or p.name.startswith(f"{SHARDS}.tmp"):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def check_n_shards(n: object) -> int:
    """n as an int in [1, 1000], else ConfigError."""
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 1000:
        raise ConfigError(f"--shards must be an int from 1 to 1000, got {n!r}")
    return n

