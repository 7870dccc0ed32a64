"""`adarag serve` as a real uvicorn process on a free loopback port (smollm-135m, 1 thread), for tests that talk
to it over TCP with a client we did not write."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(index: Path, keys: str, *args: str, ready_s: float = 120) -> Iterator[str]:
    """Serve `index` with API keys `keys` (comma-separated); yields the base URL, stops with SIGINT and checks
    the process exits cleanly."""
    import httpx

    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", str(index), "--port", str(port),
                          "--generator", "smollm-135m", "--threads", "1", "--json", *args],
                         env={**os.environ, "ADARAG_API_KEYS": keys}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    base = f"http://127.0.0.1:{port}"
    t = time.monotonic()
    while time.monotonic() - t < ready_s:
        assert p.poll() is None, p.communicate()[1][-3000:]
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    else:
        p.kill()
        raise AssertionError("service never became ready")
    yield base
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["stopped"] is True
