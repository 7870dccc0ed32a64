"""The one exception tree of adarag. Every message says what went wrong and what to do about it."""
from __future__ import annotations

__all__ = [
    "RagError",
    "IndexFormatError",
    "IndexBusyError",
    "ShardUnavailableError",
    "CorpusError",
    "MissingDependencyError",
    "ConfigError",
    "ModelError",
    "ServiceError",
    "NotFoundError",
    "Cancelled",
    "ArtifactError",
    "positive_int",
]


class RagError(Exception):
    """Base of every error adarag raises on purpose."""


class IndexFormatError(RagError):
    """An index directory is missing, corrupt, incomplete or of another format version."""


class IndexBusyError(RagError):
    """Another writer holds the index's write lock and did not finish within the wait."""


class ShardUnavailableError(RagError):
    """A shard of a sharded index is down (its actor died or its node left) and no replica could answer."""


class CorpusError(RagError, ValueError):
    """Input documents are unusable: malformed file, empty corpus, duplicate ids, bad encoding."""


class MissingDependencyError(RagError, ImportError):
    """An optional dependency (an extra, or a --no-deps data package) is not installed."""


class ConfigError(RagError, ValueError):
    """A bad argument or setting: unknown name, wrong type, out-of-range value."""


class ModelError(RagError):
    """A bundled model could not be assembled, verified, converted or loaded."""


class ArtifactError(IndexFormatError, ModelError):
    """A saved artifact (policy, reranker, LTR model, converted model) is missing, of another format or version,
    or fails its checksums (indexers.artifact). It is both an IndexFormatError and a ModelError, as the five
    per-artifact errors it replaces were one or the other."""


class NotFoundError(RagError, LookupError):
    """A requested document or passage id is not in the store."""


class ServiceError(RagError):
    """The HTTP service could not serve a request."""


class Cancelled(RagError):
    """The caller cancelled a running request (its timeout passed or its client went away); nothing was stored."""


def missing(extra: str, module: str) -> MissingDependencyError:
    """Build the error for a missing optional module, naming the pip command that fixes it."""
    torch_first = " (install torch==2.13.0 first, see README)" if extra in ("dense", "generate", "all") else ""
    return MissingDependencyError(
        f"{module!r} is not installed; it comes with adarag's [{extra}] extra: pip install 'adarag[{extra}]'{torch_first}"
    )


def positive_int(value: object, name: str, high: int | None = None) -> int:
    """`value` as an int if it is a positive integer (numpy's too, never a bool) of at most `high`, else a
    ConfigError naming `name`: the one check every positive count and size argument goes through."""
    if isinstance(value, bool) or not hasattr(value, "__index__") or value < 1 or (high is not None and value > high):
        span = f" from 1 to {high:,}" if high is not None else ""
        raise ConfigError(f"{name} must be a positive int{span}, got {type(value).__name__} {value!r}")
    return int(value)
