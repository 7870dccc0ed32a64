"""One writer at a time per index: an exclusive `fcntl.flock` on `<index>/write.lock`.

Every build, add, delete and merge takes it (the CLI, the SDK and the service alike), so two writers never
interleave their publishes. The kernel drops the lock when its holder dies, `kill -9` included, so a crashed
writer never leaves the index locked. The file also names its holder, for the message a waiting writer sees.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from indexers.errors import ConfigError, IndexBusyError

__all__ = ["LOCK_FILE", "DEFAULT_LOCK_WAIT", "WriteLock"]

log = logging.getLogger(__name__)

LOCK_FILE = "write.lock"
DEFAULT_LOCK_WAIT = 600.0
"""Seconds a writer waits for another writer of the same index before giving up (None waits for ever)."""
_POLL = 0.05


def _holder(path: Path) -> str:
    """Who holds the lock, as the holder wrote it (best effort: the holder may be writing it right now)."""
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
        return f"pid {info['pid']} on {info['host']} since {time.ctime(info['since'])} ({info['command']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


class WriteLock:
    """Exclusive writer lock of the index directory `root` (which must exist); a context manager.

    `wait` is how many seconds to wait for another writer (0: fail at once, None: for ever); past it,
    `IndexBusyError` names the holder. Threads of one process exclude each other too (one open file each).
    """

    def __init__(self, root: str | Path, *, wait: float | None = DEFAULT_LOCK_WAIT) -> None:
        if wait is not None and (isinstance(wait, bool) or not isinstance(wait, (int, float)) or not wait >= 0):
            raise ConfigError(f"lock wait must be None (for ever) or seconds >= 0, got {wait!r}")
        self.path = Path(root) / LOCK_FILE
        self.wait = wait
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if self.wait is None else time.monotonic() + self.wait
        told = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise IndexBusyError(
                            f"index {self.path.parent} is being written by {_holder(self.path)}; waited "
                            f"{self.wait:g} s: try again when it finishes (or raise the wait, --wait SECONDS)"
                        ) from None
                    if not told:
                        log.warning("waiting for %s: the index is being written by %s", self.path.parent,
                                    _holder(self.path))
                        told = True
                    time.sleep(_POLL)
            info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                    "command": " ".join(sys.argv)[:300]}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)  # closing the descriptor drops the flock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "WriteLock":
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
