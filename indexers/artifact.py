"""One way to write and read a checksummed artifact folder: search policies, trained rerankers, LTR models and
converted models use it whole; indexes (indexers.index_dir) and sharded indexes build on its primitives.

    with publish(dest, FORMAT, VERSION) as (stage, body):   # stage: a fresh folder beside dest
        ...write files into stage, put settings into body...
    # on leaving the block: seal (manifest with every file's size and sha256, and its own checksum), then commit

    manifest = open_verified(dest, FORMAT, (VERSION,), fix="retrain it with ...")

Safe-publish rules (the no-data-loss issue), the same for every artifact:
- nothing appears at `dest` until `commit`; a writer killed before it leaves only `<dest>.incomplete-*`, removed
  by the next writer of that artifact;
- `commit` fsyncs the staged files and folders, moves the old version aside, moves the new one in, fsyncs the
  parent, and only then deletes the old one; killed between the two moves, the next `open_verified` or `stage`
  puts the old version back;
- `open_verified` trusts nothing: format, version, the manifest's own checksum, and every file's size (and
  sha256 unless `hash_files=False`, for multi-GB caches that are rebuildable) must match, else ArtifactError
  saying what to do.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from indexers.errors import ArtifactError

__all__ = ["MANIFEST", "ArtifactError", "adarag_version", "commit", "fsync_dir", "fsync_tree", "manifest_checksum",
           "open_verified", "publish", "read_artifact_manifest", "seal", "sha256_file", "stage"]

MANIFEST = "manifest.json"
_INCOMPLETE = ".incomplete"
_PREVIOUS = ".previous"


def adarag_version() -> str:
    """The installed adarag version (recorded in every manifest), or "unknown" from a bare checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("adarag")
    except PackageNotFoundError:
        return "unknown"


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


def manifest_checksum(raw: dict[str, Any]) -> str:
    """sha256 of a manifest's canonical JSON without its own `checksum` key."""
    body = {k: v for k, v in raw.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file under `root`, then every folder (so their entries are durable too)."""
    for p in sorted(root.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    for d in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
        fsync_dir(d)


def _siblings(dest: Path, suffix: str) -> list[Path]:
    return sorted(p for p in dest.parent.glob(f"{dest.name}{suffix}-*") if p.is_dir()) if dest.parent.is_dir() else []


def _recover(dest: Path) -> None:
    """A commit killed between its two moves left no `dest` but the previous version aside: move it back."""
    if not dest.exists():
        for prev in _siblings(dest, _PREVIOUS)[-1:]:
            try:
                os.replace(prev, dest)
            except OSError:
                if not dest.exists():
                    raise


def stage(dest: str | Path) -> Path:
    """A fresh, empty `<dest>.incomplete-<pid>-<hex>/` beside `dest`, unique to this writer; leftovers of killed
    writers are removed first (a live writer's folder is kept: its pid still runs)."""
    dest = Path(dest)
    _recover(dest)
    for old in _siblings(dest, _INCOMPLETE):
        pid = old.name[len(dest.name) + len(_INCOMPLETE) + 1:].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    out = dest.with_name(f"{dest.name}{_INCOMPLETE}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    out.mkdir(parents=True)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _safe_rel(rel: object) -> bool:
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        return False
    return not PurePosixPath(rel).is_absolute() and all(part not in ("", ".", "..") for part in rel.split("/"))


def seal(folder: Path, format: str, version: int, body: dict[str, Any], *, manifest: str = MANIFEST
         ) -> dict[str, Any]:
    """Write `folder/<manifest>`: format, version, adarag version, time, `body`, every other file's size and
    sha256 under "files", and the manifest's own checksum. Returns what it wrote."""
    files = {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": sha256_file(p)}
             for p in sorted(folder.rglob("*")) if p.is_file() and p.relative_to(folder).as_posix() != manifest}
    raw = {"format": format, "version": version, "adarag_version": adarag_version(), "created": time.time(),
           **body, "files": files}
    raw["checksum"] = manifest_checksum(raw)
    (folder / manifest).write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")
    return raw


def commit(staged: Path, dest: str | Path) -> None:
    """Swap a sealed staging folder into place at `dest` (see the module's safe-publish rules)."""
    dest = Path(dest)
    fsync_tree(staged)
    prev = None
    if dest.exists():
        prev = dest.with_name(f"{dest.name}{_PREVIOUS}-{uuid.uuid4().hex[:8]}")
        os.replace(dest, prev)
    os.replace(staged, dest)
    fsync_dir(dest.parent)
    if prev is not None:
        shutil.rmtree(prev)


def _check_replaceable(dest: Path, format: str, manifest: str) -> None:
    """Refuse to replace a folder that is not an artifact of `format` (a user's folder given as --out)."""
    if not dest.exists():
        return
    try:
        got = json.loads((dest / manifest).read_text(encoding="utf-8")).get("format")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        got = None
    if got != format and (dest.is_file() or any(dest.iterdir())):
        raise ArtifactError(f"{dest} exists and is not a {format} folder (no {manifest} of that format): writing "
                            "there would replace what it holds; choose another output folder or empty this one")


@contextmanager
def publish(dest: str | Path, format: str, version: int, *, manifest: str = MANIFEST, replace_foreign: bool = False
            ) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Stage, let the caller write files and fill the manifest body, then seal and commit; on an exception the
    staging folder is removed and `dest` is untouched. An existing `dest` is replaced only when it is an artifact
    of the same format (or empty), unless `replace_foreign` (a cache adarag owns)."""
    dest = Path(dest)
    if not replace_foreign:
        _check_replaceable(dest, format, manifest)
    staged = stage(dest)
    body: dict[str, Any] = {}
    try:
        yield staged, body
        seal(staged, format, version, body, manifest=manifest)
        commit(staged, dest)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def read_artifact_manifest(path: str | Path, format: str, versions: Sequence[int], *, fix: str,
                           manifest: str = MANIFEST) -> dict[str, Any]:
    """The manifest of artifact folder `path`, its format, version and own checksum checked (files are not)."""
    path = Path(path)
    _recover(path)
    file = path / manifest
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path} holds no {manifest}: it is not a {format} folder; {fix}") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ArtifactError(f"{file} is unreadable ({e}); {fix}") from None
    if not isinstance(raw, dict) or raw.get("format") != format:
        got = raw.get("format") if isinstance(raw, dict) else None
        raise ArtifactError(f"{path} is a {got!r} folder, not {format}; {fix}")
    if raw.get("version") not in versions:
        raise ArtifactError(f"{path} is {format} version {raw.get('version')!r}, this adarag reads "
                            f"{', '.join(map(str, versions))}: upgrade adarag, or {fix}")
    if "checksum" in raw and raw["checksum"] != manifest_checksum(raw):
        raise ArtifactError(f"{file} fails its checksum (edited or truncated); {fix}")
    return raw


def open_verified(path: str | Path, format: str, versions: Sequence[int], *, fix: str, manifest: str = MANIFEST,
                  hash_files: bool = True) -> dict[str, Any]:
    """The manifest of artifact folder `path` once everything checks: format, version, the manifest's checksum
    and every listed file (size; sha256 unless `hash_files=False`). Legacy manifests that list bare sha256
    digests are read too. Any mismatch is an ArtifactError ending in `fix`."""
    path = Path(path)
    raw = read_artifact_manifest(path, format, versions, fix=fix, manifest=manifest)
    files = raw.get("files", raw.get("sha256", {}))  # "sha256": legacy reranker manifests
    if not isinstance(files, dict):
        raise ArtifactError(f"{path / manifest} is corrupt (bad file list); {fix}")
    for rel, want in files.items():
        want = {"sha256": want} if isinstance(want, str) else want  # legacy: {name: sha256}
        f = path / rel if _safe_rel(rel) else None
        if f is None or not isinstance(want, dict) or not f.is_file():
            raise ArtifactError(f"{path / str(rel)} is missing; {fix}")
        if "size" in want and f.stat().st_size != want["size"]:
            raise ArtifactError(f"{f} has {f.stat().st_size} bytes, its manifest says {want['size']} (truncated or "
                                f"replaced); {fix}")
        if hash_files and "sha256" in want and sha256_file(f) != want["sha256"]:
            raise ArtifactError(f"{f} fails its checksum (its sha256 differs: corrupt or edited); {fix}")
    return raw
