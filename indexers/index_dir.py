"""The on-disk index directory: segments and generations behind one self-checksummed `manifest.json`.

Layout of an index directory (format `adarag-index`, version 3)::

    manifest.json        format, version, generation, build params, n_docs, n_passages (live), stores, the
                         segments in order (name, rows, current deletion folder, deleted rows), the SQLite
                         file, xxh3-128 + size of every data file, and its own sha256 (`checksum`)
    write.lock           the writers' lock (indexers.lock)
    docs-000001.sqlite   the document store, updated in place (undo-logged: indexers.sql_store)
    seg-000001-000/      an immutable segment: row maps, one folder per store, deletion folders del-GGGGGG/
    gen-000007/          generation-wide store state (e.g. BM25 collection statistics)

A write stages new segments, deletion folders and its generation folder in `.staging-<pid>-<hex>/`, fsyncs
them, renames them into place under names no published manifest uses, and then publishes by atomically
replacing `manifest.json`: the one step that changes what readers see. Folders neither the new nor the
previous manifest names are removed after publishing (readers still on the previous generation keep theirs).
A writer killed at any moment leaves the last published generation loadable; the next writer removes what it
left. Formats 1 (store files in the root) and 2 (one `gen-NNNNNN/` folder) still load, as one segment; the
next write converts them.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import xxhash

from indexers.artifact import adarag_version, fsync_dir, fsync_tree, manifest_checksum, sha256_file
from indexers.errors import IndexFormatError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST",
    "Manifest",
    "FILE_HASH",
    "hash_file",
    "read_manifest",
    "verify_index",
    "data_dir",
    "manifest_stamp",
    "index_state",
    "recover_swap",
    "new_stage",
    "clean_leftovers",
    "load_arrays",
    "SEGMENT",
    "DELETED",
    "SQLITE",
    "publish_segments",
    "segments_fingerprint",
    "referenced",
]

log = logging.getLogger(__name__)

FORMAT_NAME = "adarag-index"
FORMAT_VERSION = 3
MANIFEST = "manifest.json"
_READS = (1, 2, 3)
_GEN = re.compile(r"gen-(\d{6,})")
SEGMENT = re.compile(r"seg-(\d{6,})-(\d{3,})")
DELETED = re.compile(r"del-(\d{6,})")
SQLITE = re.compile(r"docs-(\d{6,})\.sqlite")
_STAGE_PREFIX = ".staging-"
_SQLITE_SIDE = ("docs.sqlite-wal", "docs.sqlite-shm", "docs.sqlite-journal")  # SQLite's own, never listed
_LEFTOVER = re.compile(r"(\.staging-.*|manifest\.json\.tmp.*|write\.lock)")
_INCOMPLETE = ".incomplete"  # format 1's sibling staging directory, and the artifacts' (see staging_dir)
_PREVIOUS = ".previous"
FILE_HASH = "xxh3_128"
"""The data files' checksum from format 2 on: ~16 GB/s here against sha256's 1.5, so a full check of a
multi-GB index on every open runs at memory speed. It guards against corruption, not forgery: the
manifest's own sha256 covers the list of sizes and checksums."""
_FILE_HASH_HEX = {"sha256": re.compile(r"[0-9a-f]{64}"), FILE_HASH: re.compile(r"[0-9a-f]{32}")}


@dataclass(frozen=True)
class Manifest:
    """What `manifest.json` holds; `files` maps a path relative to `data` -> {"xxh3_128", "bytes"}
    ({"sha256", "bytes"} in format 1).

    `data` is the generation directory (`gen-000007`), "" for a format-1 index whose files lie in the root;
    `previous` is the generation before it, kept until the next write for readers still on it.
    """

    n_docs: int
    n_passages: int
    corpus_fingerprint: str
    stores: list[str]
    params: dict[str, Any]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION
    adarag_version: str = field(default_factory=adarag_version)
    created: float = field(default_factory=time.time)
    generation: int = 0
    data: str = ""
    previous: str = ""
    segments: list[dict[str, Any]] = field(default_factory=list)
    sql: str = ""


_TYPES: dict[str, tuple[type, ...]] = {
    "n_docs": (int,), "n_passages": (int,), "corpus_fingerprint": (str,), "stores": (list,), "params": (dict,),
    "files": (dict,), "format": (str,), "version": (int,), "adarag_version": (str,), "created": (int, float),
    "generation": (int,), "data": (str,), "previous": (str,), "segments": (list,), "sql": (str,),
}
_SINCE = {"generation": 2, "data": 2, "previous": 2, "segments": 3, "sql": 3}  # fields newer formats added


def hash_file(path: Path, algo: str = FILE_HASH, chunk: int = 8 << 20) -> str:
    """Hex digest of a file, streamed: xxh3-128 (format 2) or sha256 (format 1)."""
    if algo == "sha256":
        return sha256_file(path, chunk=chunk)
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def load_arrays(directory: Path, want: dict[str, tuple[Any, tuple[int, ...]]]) -> dict[str, np.ndarray]:
    """Memory-map `<name>.npy` for each name in `want` (name -> (dtype, shape)), checking dtype and shape.

    Every store's loader goes through here, so a truncated, foreign or stale array file always gives the same
    clear IndexFormatError naming the file.
    """
    out = {}
    for name, (dtype, shape) in want.items():
        path = Path(directory) / f"{name}.npy"
        try:
            a = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise IndexFormatError(f"{path}: cannot read ({e}); rebuild the index") from e
        if a.dtype != np.dtype(dtype) or a.shape != tuple(shape):
            raise IndexFormatError(f"{path}: expected {np.dtype(dtype)} {list(shape)}, found {a.dtype} "
                                   f"{list(a.shape)}; the index is corrupt or from another build: rebuild it")
        out[name] = a
    return out


# --------------------------------------------------------------------------- reading


def _rebuild_hint(root: Path) -> str:
    return f"rebuild it with `adarag index CORPUS --out {root} --rebuild`"


def _safe_relpath(rel: object) -> bool:
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        return False
    p = PurePosixPath(rel)
    return not p.is_absolute() and all(part not in ("", ".", "..") for part in rel.split("/"))


def _file_hash(version: int) -> str:
    return "sha256" if version == 1 else FILE_HASH


def _validate(raw: dict[str, Any], path: Path, root: Path) -> Manifest:
    """Check every field's type and shape; any problem is an IndexFormatError naming the manifest."""
    bad = f"{path} is corrupt"
    known = {f.name for f in fields(Manifest)}
    unknown = sorted(set(raw) - known - {"checksum"})
    if unknown:
        raise IndexFormatError(f"{bad}: unexpected field(s) {unknown}; {_rebuild_hint(root)}")
    for name, types in _TYPES.items():
        if name not in raw:
            if raw.get("version", 0) < _SINCE.get(name, 1):
                continue
            raise IndexFormatError(f"{bad}: field {name!r} is missing; {_rebuild_hint(root)}")
        v = raw[name]
        if not isinstance(v, types) or isinstance(v, bool):
            raise IndexFormatError(f"{bad}: field {name!r} has the wrong type ({type(v).__name__}); "
                                   f"{_rebuild_hint(root)}")
    if raw["n_docs"] < 0 or raw["n_passages"] < 0 or not all(isinstance(s, str) for s in raw["stores"]):
        raise IndexFormatError(f"{bad}: negative counts or non-string store names; {_rebuild_hint(root)}")
    algo = _file_hash(raw["version"])
    for rel, meta in raw["files"].items():
        ok = _safe_relpath(rel) and isinstance(meta, dict) and set(meta) == {algo, "bytes"} and \
            isinstance(meta[algo], str) and _FILE_HASH_HEX[algo].fullmatch(meta[algo]) is not None and \
            isinstance(meta["bytes"], int) and not isinstance(meta["bytes"], bool) and meta["bytes"] >= 0
        if not ok:
            raise IndexFormatError(f"{bad}: bad file entry {rel!r} (paths must be relative, inside the index, "
                                   f"with a {algo} and a size); {_rebuild_hint(root)}")
    if raw["version"] >= 3:
        _validate_segments(raw, bad, root)
    elif raw["version"] == 2:
        if _GEN.fullmatch(raw["data"]) is None or int(raw["data"][4:]) != raw["generation"]:
            raise IndexFormatError(f"{bad}: data directory {raw['data']!r} does not match generation "
                                   f"{raw['generation']}; {_rebuild_hint(root)}")
        if raw["previous"] and _GEN.fullmatch(raw["previous"]) is None:
            raise IndexFormatError(f"{bad}: bad previous generation {raw['previous']!r}; {_rebuild_hint(root)}")
        need = ["ids.npy", "passage_hashes.npy"] + (["docs.sqlite"] if not raw["params"].get("sql_url") else [])
        missing = [f for f in need if f not in raw["files"]] + \
            [s for s in raw["stores"] if not any(f.startswith(f"{s}/") for f in raw["files"])]
        if missing:
            raise IndexFormatError(f"{bad}: it lists no file for {missing}; {_rebuild_hint(root)}")
    return Manifest(**{k: v for k, v in raw.items() if k != "checksum"})


def _validate_segments(raw: dict[str, Any], bad: str, root: Path) -> None:
    """Format 3: the generation folder, the SQLite file and every segment entry are well formed, and the
    files list names each segment's row maps and a file of each store."""
    hint = _rebuild_hint(root)
    if _GEN.fullmatch(raw["data"]) is None or int(raw["data"][4:]) != raw["generation"]:
        raise IndexFormatError(f"{bad}: generation folder {raw['data']!r} does not match generation "
                               f"{raw['generation']}; {hint}")
    if raw["previous"] and _GEN.fullmatch(raw["previous"]) is None:
        raise IndexFormatError(f"{bad}: bad previous generation {raw['previous']!r}; {hint}")
    if raw["params"].get("sql_url") is None and SQLITE.fullmatch(raw["sql"]) is None:
        raise IndexFormatError(f"{bad}: bad document store file {raw['sql']!r}; {hint}")
    total = 0
    names = set()
    for seg in raw["segments"]:
        ok = isinstance(seg, dict) and set(seg) == {"name", "n_rows", "deleted", "n_deleted"} and \
            isinstance(seg["name"], str) and SEGMENT.fullmatch(seg["name"]) is not None and \
            all(isinstance(seg[k], int) and not isinstance(seg[k], bool) for k in ("n_rows", "n_deleted")) and \
            0 <= seg["n_deleted"] <= seg["n_rows"] and isinstance(seg["deleted"], str) and \
            (seg["deleted"] == "" if seg["n_deleted"] == 0 else DELETED.fullmatch(seg["deleted"]) is not None)
        if not ok or seg["name"] in names:
            raise IndexFormatError(f"{bad}: bad segment entry {seg!r}; {hint}")
        names.add(seg["name"])
        total += seg["n_rows"] - seg["n_deleted"]
        need = [f"{seg['name']}/ids.npy", f"{seg['name']}/passage_hashes.npy"] + \
            ([f"{seg['name']}/{seg['deleted']}/rows.npy"] if seg["deleted"] else [])
        missing = [f for f in need if f not in raw["files"]] + \
            [f"{seg['name']}/{s}" for s in raw["stores"]
             if not any(f.startswith(f"{seg['name']}/{s}/") for f in raw["files"])]
        if missing:
            raise IndexFormatError(f"{bad}: it lists no file for {missing}; {hint}")
    if total != raw["n_passages"]:
        raise IndexFormatError(f"{bad}: its segments hold {total} live rows, it says {raw['n_passages']} "
                               f"passages; {hint}")


def read_manifest(root: Path) -> Manifest:
    """Read `manifest.json` and check its own checksum, format, version and every field's shape.

    Does not read the data files (verify_index does).
    """
    root = Path(root)
    if not root.exists():
        prev = root.with_name(root.name + _PREVIOUS)
        extra = f" (a previous index was kept at {prev}: rename it back)" if prev.exists() else ""
        raise IndexFormatError(f"no index at {root}{extra}; build one with `adarag index CORPUS --out {root}`")
    if not root.is_dir():
        raise IndexFormatError(f"{root} is a file, not an index directory: give the index's folder")
    path = root / MANIFEST
    if not path.is_file():
        raise IndexFormatError(
            f"{root} has no {MANIFEST}: it is not an adarag index (or its first build did not finish); build an "
            f"index into a new or empty folder: `adarag index CORPUS --out NEW_FOLDER`"
        )
    try:
        raw = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise IndexFormatError(f"{path} is corrupt ({type(e).__name__}: {e}); {_rebuild_hint(root)}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"{path} is not an {FORMAT_NAME} manifest; build an index into a new or empty "
                               f"folder: `adarag index CORPUS --out NEW_FOLDER`")
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise IndexFormatError(f"{path} is corrupt: bad format version {version!r}; {_rebuild_hint(root)}")
    if version > FORMAT_VERSION:
        raise IndexFormatError(
            f"index {root} is format {version}, written by a newer adarag ({raw.get('adarag_version', '?')}); this "
            f"adarag ({adarag_version()}) reads formats up to {FORMAT_VERSION}: upgrade adarag to read it"
        )
    if version not in _READS:
        raise IndexFormatError(f"index {root} is format {version}, which no adarag reads; {_rebuild_hint(root)}")
    if version >= 2 and raw.get("checksum") != manifest_checksum(raw):
        raise IndexFormatError(f"{path} does not match its own checksum (corrupt or edited by hand); "
                               f"{_rebuild_hint(root)}")
    return _validate(raw, path, root)


def data_dir(root: Path, manifest: Manifest) -> Path:
    """Where the manifest's file paths start: the generation directory (format 2), else the root (formats 1
    and 3: format 3 lists segment files as `seg-.../...` and generation files as `gen-.../...`)."""
    return Path(root) / manifest.data if manifest.version == 2 else Path(root)


VERIFIED = "verified.json"  # stat cache: files whose checksum matched, skipped by later opens while unchanged
_RACY_S = 2.0  # files touched this recently are never cached: a same-tick rewrite could keep their stat


def verify_index(root: Path, manifest: Manifest | None = None, *, full: bool = False) -> Manifest:
    """Check that every file the manifest lists exists with its size and checksum; raise IndexFormatError
    naming the first that does not.

    A file whose checksum matched before and whose stat (size, mtime, ctime, inode) is unchanged since is not
    read again (git's index cache does the same): any write to a file moves its ctime, so a changed byte is
    still refused, while a reopen of a multi-GB index reads no data. `full` ignores that cache (`adarag check`).
    """
    root = Path(root)
    manifest = manifest or read_manifest(root)
    data = data_dir(root, manifest)
    algo = _file_hash(manifest.version)
    cache = {} if full else _read_verified(root)
    seen: dict[str, list] = {}
    now = time.time()
    for rel, meta in manifest.files.items():
        p = data / rel
        try:
            st = p.stat()
        except OSError:
            st = None
        if st is None or not p.is_file():
            raise IndexFormatError(f"index {root} is missing {rel}; {_rebuild_hint(root)}")
        key = _stat_key(st, meta[algo])
        name = p.relative_to(root).as_posix()
        if st.st_size == meta["bytes"] and cache.get(name) == key:
            seen[name] = key
            continue
        if st.st_size != meta["bytes"] or hash_file(p, algo) != meta[algo]:
            raise IndexFormatError(
                f"index file {p} does not match its checksum in {MANIFEST} (corrupt or modified); {_rebuild_hint(root)}"
            )
        if now - max(st.st_mtime, st.st_ctime) > _RACY_S:
            seen[name] = key
    if seen != cache:
        _write_verified(root, seen)
    return manifest


def _read_verified(root: Path) -> dict[str, list]:
    try:
        raw = json.loads((root / VERIFIED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _write_verified(root: Path, entries: dict[str, list]) -> None:
    """Replace the stat cache atomically; a read-only index simply goes without one."""
    tmp = root / f"{VERIFIED}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.write_text(json.dumps(entries, sort_keys=True), encoding="utf-8")
        os.replace(tmp, root / VERIFIED)
    except OSError:
        tmp.unlink(missing_ok=True)


def manifest_stamp(root: Path) -> tuple[int, int, int] | None:
    """(inode, mtime ns, size) of `manifest.json`: changes whenever a write publishes, costs one stat."""
    try:
        st = os.stat(Path(root) / MANIFEST)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def index_state(root: Path) -> str:
    """"absent", "empty" (nothing but adarag's own leftovers), "index" (has an adarag manifest) or "foreign"."""
    root = Path(root)
    if not root.exists():
        return "absent"
    if not root.is_dir():
        return "foreign"
    names = [p.name for p in root.iterdir()]
    if MANIFEST in names:
        try:
            head = (root / MANIFEST).read_bytes()[:1 << 16]
        except OSError:
            return "foreign"
        return "index" if f'"{FORMAT_NAME}"'.encode() in head else "foreign"
    return "empty" if all(_LEFTOVER.fullmatch(n) for n in names) else "foreign"


# --------------------------------------------------------------------------- writing


def new_stage(root: Path) -> Path:
    """A fresh staging directory inside the index `root`, unique to this writer."""
    stage = Path(root) / f"{_STAGE_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    return stage


def _list_files(data: Path, stable: dict[str, list] | None = None) -> dict[str, dict[str, Any]]:
    """Manifest entries (checksum, size) of every file under `data`; with `stable`, also the stat-cache keys of
    files that did not change while hashed and were last written over _RACY_S ago."""
    out = {}
    for p in sorted(data.rglob("*")):
        if not p.is_file() or p.name in _SQLITE_SIDE:
            continue
        rel, before = p.relative_to(data).as_posix(), p.stat()
        digest = hash_file(p)
        out[rel] = {FILE_HASH: digest, "bytes": before.st_size}
        if stable is not None:
            key, after = _stat_key(before, digest), p.stat()
            if key == _stat_key(after, digest) and time.time() - max(after.st_mtime, after.st_ctime) > _RACY_S:
                stable[rel] = key
    return out


def _stat_key(st: os.stat_result, digest: str) -> list:
    """What the stat cache compares: any write to the file changes its ctime."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev, digest]


def _remember_verified(root: Path, files: dict[str, dict[str, Any]], hashed: dict[str, list]) -> None:
    """After a publish: the stat cache keeps its entries for files the manifest still lists and gains the files
    this writer hashed (renaming their folder changed none of their stat), so the next open skips them too."""
    cache = _read_verified(root)
    entries = {rel: key for rel, key in cache.items() if rel in files}
    for rel, key in hashed.items():
        try:
            st = (root / rel).stat()
        except OSError:
            continue
        if _stat_key(st, key[-1]) == key:
            entries[rel] = key
    if entries != cache:
        _write_verified(root, entries)


def referenced(m: Manifest | None) -> set[str]:
    """What a format-2/3 manifest uses, as paths relative to the root: its generation folder, its SQLite file
    (with SQLite's side files), its segments and their deletion folders."""
    if m is None or m.version == 1:
        return set()
    refs = {m.data} - {""}
    if m.sql:
        refs |= {m.sql, *(f"{m.sql}{side}" for side in ("-wal", "-shm", "-journal"))}
    for seg in m.segments:
        refs.add(seg["name"])
        if seg["deleted"]:
            refs.add(f"{seg['name']}/{seg['deleted']}")
    return refs


def _write_manifest(root: Path, done: Manifest) -> None:
    raw = asdict(done)
    raw["checksum"] = manifest_checksum(raw)
    tmp = root / f"{MANIFEST}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(raw, indent=2, sort_keys=True))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, root / MANIFEST)
    fsync_dir(root)


def publish_segments(root: Path, moves: list[tuple[Path, str]], manifest: Manifest, old: Manifest | None) -> Manifest:
    """Publish a format-3 generation: checksum and fsync each finished folder `src`, rename it to its place
    `dst` (relative to `root`: a new segment, a segment's new deletion folder, the generation folder), then
    atomically replace `manifest.json`. `manifest.files` carries the entries of files it keeps; the moved
    files' entries are added here. Caller holds the write lock and has set the generation fields."""
    root = Path(root)
    files, hashed = dict(manifest.files), {}
    for src, dst in moves:
        stable: dict[str, list] = {}
        files.update({f"{dst}/{rel}": meta for rel, meta in _list_files(src, stable).items()})
        hashed.update({f"{dst}/{rel}": key for rel, key in stable.items()})
        fsync_tree(src)
    for src, dst in moves:
        target = root / dst
        if target.exists():  # left by a writer killed before it published: never referenced
            shutil.rmtree(target)
        os.rename(src, target)
        fsync_dir(target.parent)
    done = Manifest(**{**asdict(manifest), "files": files, "version": FORMAT_VERSION,
                       "corpus_fingerprint": segments_fingerprint(manifest.segments, files)})
    _write_manifest(root, done)
    _remember_verified(root, files, hashed)
    if old is not None and old.version == 1:
        _remove_format1_files(root, old)
    _remove_unreferenced(root, referenced(done) | referenced(old))
    return done


def segments_fingerprint(segments: list[dict[str, Any]], files: dict[str, dict[str, Any]]) -> str:
    """sha256 naming the exact live passages of a format-3 index: each segment's row maps (ids, content hashes)
    and deleted rows, by their checksums, in order (no data file is read)."""
    h = hashlib.sha256()
    for seg in segments:
        rels = [f"{seg['name']}/ids.npy", f"{seg['name']}/passage_hashes.npy"] + \
            ([f"{seg['name']}/{seg['deleted']}/rows.npy"] if seg["deleted"] else [])
        for rel in rels:
            h.update(f"{rel}={files[rel][FILE_HASH]};".encode())
    return h.hexdigest()


def _generation_of(name: str) -> int | None:
    for pat in (SEGMENT, _GEN, DELETED):
        m = pat.fullmatch(name)
        if m:
            return int(m.group(1))
    m = SQLITE.match(name)
    return int(m.group(1)) if m and name[m.end():] in ("", "-wal", "-shm", "-journal") else None


def _remove_unreferenced(root: Path, keep: set[str], newer_than: int | None = None) -> None:
    """Remove segment, generation and SQLite entries (and segments' deletion folders) that `keep` does not
    name; with `newer_than`, only those a killed writer made for a later generation than that."""
    def stale(rel: str, name: str) -> bool:
        gen = _generation_of(name)
        return gen is not None and rel not in keep and (newer_than is None or gen > newer_than)

    for p in list(root.iterdir()):
        if stale(p.name, p.name):
            log.debug("removing %s", p)
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        elif SEGMENT.fullmatch(p.name) and p.name in keep and p.is_dir():
            for q in p.iterdir():
                if DELETED.fullmatch(q.name) and stale(f"{p.name}/{q.name}", q.name):
                    shutil.rmtree(q, ignore_errors=True)


def clean_leftovers(root: Path, manifest: Manifest | None) -> None:
    """Remove what dead writers left (staging dirs, temp manifests) and generations older than the previous one.

    Caller holds the write lock, so no live writer owns any of it. Nothing else in `root` is touched.
    """
    root = Path(root)
    if manifest is not None and manifest.version >= 3:  # what a killed writer made for the next generation
        _remove_unreferenced(root, referenced(manifest), newer_than=manifest.generation)
    keep = {manifest.data, manifest.previous} - {""} if manifest is not None else set()
    for p in root.iterdir():
        temp = p.name.startswith((f"{MANIFEST}.tmp", f"{VERIFIED}.tmp")) and p.is_file()
        if p.name.startswith(_STAGE_PREFIX) or temp:
            log.info("removing %s left by an interrupted write", p)
        elif _GEN.fullmatch(p.name) and p.name not in keep and manifest is not None and manifest.version < 3:
            log.debug("removing old generation %s", p)
        else:
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _remove_format1_files(root: Path, old: Manifest) -> None:
    """After the first format-2 publish: the format-1 files the old manifest listed, and their emptied folders."""
    dirs = set()
    for rel in [*old.files, *_SQLITE_SIDE]:
        p = root / rel
        if p.is_file() and _safe_relpath(rel):
            p.unlink()
            dirs.update(q for q in p.relative_to(root).parents if q != Path("."))
    for d in sorted(dirs, key=lambda q: -len(q.parts)):
        try:
            (root / d).rmdir()
        except OSError:
            pass  # not empty: something of the user's is in it


def recover_swap(root: Path) -> None:
    """Finish or undo a format-1 swap that a kill interrupted (`root` missing, `.incomplete` / `.previous`
    beside it): a verified complete staging dir becomes the index, else the previous index comes back.

    Never deletes either: what is not moved into place stays for the user to inspect.
    """
    root = Path(root)
    if root.exists():
        return
    stage, prev = root.with_name(root.name + _INCOMPLETE), root.with_name(root.name + _PREVIOUS)
    for cand, what in ((stage, "the interrupted build's finished index"), (prev, "the previous index")):
        if not cand.is_dir():
            continue
        try:
            verify_index(cand)
        except IndexFormatError as e:
            log.warning("not restoring %s: %s", cand, e)
            continue
        try:
            os.rename(cand, root)
        except OSError:
            if root.exists():
                return  # another process recovered it first
            raise
        left = f"; {prev} is kept: delete it once you are satisfied" if cand == stage and prev.exists() else ""
        log.warning("%s was missing after an interrupted build: restored %s from %s%s", root, what, cand, left)
        return


