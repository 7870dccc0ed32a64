"""Service settings: one frozen dataclass, parsed once at the edge (CLI flags, ADARAG_API_KEYS, a keys file)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from indexers.errors import ConfigError, positive_int

__all__ = ["ServiceSettings", "load_api_keys", "API_KEYS_ENV"]

API_KEYS_ENV = "ADARAG_API_KEYS"
_MIN_KEY_CHARS = 16


@dataclass(frozen=True)
class ServiceSettings:
    """Limits and security of one service process. `api_keys` empty means no auth (needs `allow_anonymous`).

    `max_queue` bounds the asks admitted at once (running + waiting for the generator): the one more gets a 503
    with Retry-After instead of queueing without bound. `max_pending` does the same for search and ingest.
    """

    api_keys: tuple[str, ...] = ()
    allow_anonymous: bool = False
    max_body_bytes: int = 1 << 20
    max_question_chars: int = 2048
    max_documents: int = 256
    max_queue: int = 4
    max_pending: int = 32
    timeout_s: float = 120.0
    max_new_tokens_limit: int = 512
    cors_origins: tuple[str, ...] = ()
    warm_up: bool = True

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_question_chars", "max_documents", "max_queue", "max_pending",
                     "max_new_tokens_limit"):
            v = getattr(self, name)
            positive_int(v, f"{name}")
        if not isinstance(self.timeout_s, (int, float)) or not self.timeout_s > 0:
            raise ConfigError(f"timeout_s must be a positive number of seconds, got {self.timeout_s!r}")
        if not self.api_keys and not self.allow_anonymous:
            raise ConfigError(f"no API keys: set {API_KEYS_ENV}=key1,key2 or pass --api-keys-file FILE "
                              "(one key a line), or --no-auth to serve without authentication (loopback only)")
        for k in self.api_keys:
            if len(k) < _MIN_KEY_CHARS or any(c.isspace() for c in k):
                raise ConfigError(f"API keys must be at least {_MIN_KEY_CHARS} characters without whitespace; "
                                  "generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")


def load_api_keys(keys_file: str | os.PathLike[str] | None = None, env: str | None = None) -> tuple[str, ...]:
    """Keys from `ADARAG_API_KEYS` (comma-separated) plus a file (one a line, `#` comments), deduplicated."""
    env = os.environ.get(API_KEYS_ENV, "") if env is None else env
    keys = [k.strip() for k in env.split(",")]
    if keys_file is not None:
        path = Path(keys_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read the API keys file {path}: {e.strerror}; pass an existing file") from None
        keys += [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    return tuple(dict.fromkeys(k for k in keys if k))
