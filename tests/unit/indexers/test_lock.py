"""The writers' lock: exclusive, names its holder, waits or fails, and dies with its holder (kill -9 too)."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from indexers.errors import ConfigError, IndexBusyError
from indexers.lock import LOCK_FILE, WriteLock


def test_a_second_writer_fails_at_once_naming_the_holder(tmp_path):
    with WriteLock(tmp_path, wait=0):
        with pytest.raises(IndexBusyError, match=rf"pid {os.getpid()} on .*--wait SECONDS"):
            WriteLock(tmp_path, wait=0).acquire()
    with WriteLock(tmp_path, wait=0) as again:  # released on exit
        assert again.held


def test_a_waiting_writer_gets_the_lock_when_the_holder_finishes(tmp_path):
    first = WriteLock(tmp_path, wait=0)
    first.acquire()
    threading.Timer(0.3, first.release).start()
    t = time.monotonic()
    with WriteLock(tmp_path, wait=10):
        assert time.monotonic() - t >= 0.25
    with pytest.raises(IndexBusyError, match="waited 0.2 s"):
        with WriteLock(tmp_path, wait=0):
            WriteLock(tmp_path, wait=0.2).acquire()


def test_a_killed_holder_releases_the_lock(tmp_path):
    code = textwrap.dedent(f"""
        import sys, time
        from indexers.lock import WriteLock
        WriteLock({str(tmp_path)!r}, wait=0).acquire()
        print("held", flush=True)
        time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(IndexBusyError, match=f"pid {p.pid}"):
            WriteLock(tmp_path, wait=0).acquire()
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
        with WriteLock(tmp_path, wait=5):
            assert (tmp_path / LOCK_FILE).exists()
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("wait", [-1, "5", True, float("nan")])
def test_bad_wait_is_a_config_error(tmp_path, wait):
    with pytest.raises(ConfigError, match="lock wait"):
        WriteLock(tmp_path, wait=wait)
