"""`adarag serve INDEX`: settings from flags and the environment, then one uvicorn worker on the app."""
from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path

from indexers.errors import ConfigError, missing
from indexers.index_dir import read_manifest, recover_swap
from indexers.shards.layout import is_sharded
from services.settings import ServiceSettings, load_api_keys

__all__ = ["serve", "settings_from_args"]

log = logging.getLogger(__name__)

SERVICE_LOCK_WAIT = 30.0
"""Seconds a document write through the service waits for another writer of the index before a 503."""


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def settings_from_args(*, host: str, api_keys_file: str | os.PathLike[str] | None = None, no_auth: bool = False,
                       max_queue: int = 4, max_pending: int = 32, timeout: float = 120.0,
                       max_body_bytes: int = 1 << 20, max_question_chars: int = 2048,
                       cors_origins: tuple[str, ...] = (), warm_up: bool = True) -> ServiceSettings:
    """The service's settings; `--no-auth` is refused on a non-loopback address (an open model to the network)."""
    keys = load_api_keys(api_keys_file)
    if no_auth and keys:
        raise ConfigError("--no-auth with API keys configured: drop --no-auth, or unset ADARAG_API_KEYS / "
                          "--api-keys-file")
    if no_auth and not _loopback(host):
        raise ConfigError(f"--no-auth serves without authentication, allowed on loopback only (not {host!r}): "
                          "configure API keys to listen on other addresses")
    return ServiceSettings(api_keys=keys, allow_anonymous=no_auth, max_queue=max_queue, max_pending=max_pending,
                           timeout_s=timeout, max_body_bytes=max_body_bytes, max_question_chars=max_question_chars,
                           cors_origins=tuple(cors_origins), warm_up=warm_up)


def serve(index: str | os.PathLike[str], settings: ServiceSettings, *, host: str = "127.0.0.1", port: int = 8000,
          generator: str | None = None, threads: int | None = None, log_level: str = "info", ray: str | None = None,
          replicas: int = 1) -> None:
    """Open `index` at startup (readiness turns on when the models are loaded) and serve until interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise missing("serve", "uvicorn") from None
    from rag.sdk import DEFAULT_GENERATOR, RAG
    from services.app import create_app

    index = Path(index)
    recover_swap(index.expanduser().resolve())  # an older adarag's interrupted swap: restore before checking
    if not is_sharded(index):
        read_manifest(index)  # no index, or not one: a clear error now, not a service that never gets ready
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port must be 0..65535, got {port!r}")
    gen = generator or DEFAULT_GENERATOR
    # an add waits for another process's write at most SERVICE_LOCK_WAIT s, then answers 503 + Retry-After
    app = create_app(lambda: RAG.open(index, generator=gen, threads=threads, lock_wait=SERVICE_LOCK_WAIT, ray=ray,
                                      replicas=replicas), settings)
    log.info("serving %s on http://%s:%d (generator %s)", index, host, port, gen)
    uvicorn.run(app, host=host, port=port, workers=1, log_level=log_level, timeout_graceful_shutdown=5,
                server_header=False)
