"""The on-disk index directory: `manifest.json` + store files, written atomically, verified on load.

Layout of an index directory (format `adarag-index`, version FORMAT_VERSION)::

    manifest.json        format, version, adarag version, build params, corpus fingerprint, n_docs,
                         n_passages, stores, sha256 + size of every other file
    docs.sqlite          the SQL store (absent when the index uses an external SQL URL)
    bm25/...             sparse store arrays (.npy) + vocab.json + params.json
    dense/...            FAISS index + row ids + embeddings (.npy)

A build writes everything into the sibling `<dir>.incomplete/`, fsyncs it, then swaps it into place, so a
process killed mid-build never leaves a directory that loads as valid and never damages the previous index.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexers.errors import IndexFormatError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST",
    "Manifest",
    "sha256_file",
    "write_manifest",
    "read_manifest",
    "verify_index",
    "staging_dir",
    "commit_staging",
    "adarag_version",
    "load_arrays",
]

log = logging.getLogger(__name__)

FORMAT_NAME = "adarag-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_INCOMPLETE = ".incomplete"
_PREVIOUS = ".previous"


def adarag_version() -> str:
    """The installed adarag version (or 'unknown' when running from an uninstalled tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("adarag")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Manifest:
    """What `manifest.json` holds; `files` maps relative path -> {"sha256", "bytes"}."""

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


def sha256_file(path: Path, progress: bool = False, chunk: int = 8 << 20) -> str:
    """Hex sha256 of a file, streamed; `progress` shows a bar (the 1 GB model files)."""
    from tqdm.auto import tqdm

    h = hashlib.sha256()
    with open(path, "rb") as f, tqdm(total=Path(path).stat().st_size, desc=f"sha256 {Path(path).name}", unit="B",
                                     unit_scale=True, unit_divisor=1024, disable=not progress) as bar:
        while block := f.read(chunk):
            h.update(block)
            bar.update(len(block))
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


def _fsync_tree(root: Path) -> None:
    for p in sorted(root.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_manifest(root: Path, manifest: Manifest) -> Manifest:
    """Checksum every file under `root` (except the manifest) into the manifest and write it last."""
    files = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            rel = p.relative_to(root).as_posix()
            files[rel] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
    done = Manifest(**{**asdict(manifest), "files": files})
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(asdict(done), indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, root / MANIFEST)
    return done


def _rebuild_hint(root: Path) -> str:
    return f"rebuild it with `adarag index CORPUS --out {root}`"


def read_manifest(root: Path) -> Manifest:
    """Read and sanity-check `manifest.json` (format name and version); no checksums here."""
    root = Path(root)
    if not root.exists():
        prev = root.with_name(root.name + _PREVIOUS)
        extra = f" (a previous index was kept at {prev}: rename it back)" if prev.exists() else ""
        raise IndexFormatError(f"no index at {root}{extra}; build one with `adarag index CORPUS --out {root}`")
    if not root.is_dir():
        raise IndexFormatError(f"{root} is not an index directory; {_rebuild_hint(root)}")
    path = root / MANIFEST
    if not path.exists():
        raise IndexFormatError(
            f"{root} has no {MANIFEST}: it is not an adarag index, or its build did not finish; {_rebuild_hint(root)}"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IndexFormatError(f"{path} is corrupt ({e}); {_rebuild_hint(root)}") from e
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"{path} is not an {FORMAT_NAME} manifest; {_rebuild_hint(root)}")
    version = raw.get("version")
    if version != FORMAT_VERSION:
        raise IndexFormatError(
            f"index {root} is format {version}, this adarag ({adarag_version()}) reads format {FORMAT_VERSION}: "
            f"{_rebuild_hint(root)}"
        )
    try:
        return Manifest(**raw)
    except TypeError as e:
        raise IndexFormatError(f"{path} has unexpected fields ({e}); {_rebuild_hint(root)}") from e


def verify_index(root: Path, manifest: Manifest | None = None) -> Manifest:
    """Check that every file the manifest lists exists with its size and sha256; raise IndexFormatError if not."""
    root = Path(root)
    manifest = manifest or read_manifest(root)
    for rel, meta in manifest.files.items():
        p = root / rel
        if not p.is_file():
            raise IndexFormatError(f"index {root} is missing {rel}; {_rebuild_hint(root)}")
        if p.stat().st_size != meta["bytes"] or sha256_file(p) != meta["sha256"]:
            raise IndexFormatError(
                f"index file {p} does not match its checksum in {MANIFEST} (corrupt or modified); {_rebuild_hint(root)}"
            )
    return manifest


def staging_dir(root: Path) -> Path:
    """A fresh, empty `<root>.incomplete/` to build into (a leftover from a killed build is removed)."""
    root = Path(root)
    stage = root.with_name(root.name + _INCOMPLETE)
    if stage.exists():
        log.warning("removing %s left by an interrupted build", stage)
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    return stage


def commit_staging(stage: Path, root: Path) -> None:
    """Swap a finished staging directory into place; the old index survives until the new one is in."""
    root = Path(root)
    _fsync_tree(stage)
    prev = root.with_name(root.name + _PREVIOUS)
    if prev.exists():
        shutil.rmtree(prev)
    if root.exists():
        os.replace(root, prev)
    os.replace(stage, root)
    if prev.exists():
        shutil.rmtree(prev)
