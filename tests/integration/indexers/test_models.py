"""The model registry: name resolution, pinned package files, error messages, thread and cache settings."""

from __future__ import annotations


from indexers import models
from indexers.errors import MissingDependencyError
from indexers.models import MODELS
from tests.prereq import require


def test_installed_parts_match_pinned_sizes() -> None:
    """Cheap check (no hashing) that the installed chunk packages add up to the pinned size."""
    checked = 0
    for name in ("qwen-1.5b", "qwen-0.5b", "smollm-135m", "minilm-int8"):
        spec = MODELS[name]
        try:
            files = models.package_files(spec)
        except MissingDependencyError:
            continue
        primary = files if spec.format == "gguf" else files[:1]
        assert sum(p.stat().st_size for p in primary) == spec.size, name
        checked += 1
    if not checked:
        require(False, "no bundled model package is installed")


