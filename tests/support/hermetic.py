"""A pytest plugin that proves tests/unit hermetic: `python3 -m pytest -p tests.support.hermetic tests/unit`.

It hides what the unit tier must not need, as a clone with only adarag's pip dependencies would lack it: every
model and data package the registries name (indexers.models, indexers.bundled), Ray, the shared data
(ADARAG_SHARED pointed at an empty folder), PostgreSQL (ADARAG_TEST_PG_URL unset) and the model cache
(ADARAG_CACHE_DIR empty). A unit test that still reaches one of them fails; one that would skip for a missing
prerequisite fails too (tests/conftest.py). CI runs it before the full suite (.ci/run).
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import tempfile

from indexers.bundled import DATA_PACKAGES
from indexers.models import MODELS

HIDDEN = frozenset({"ray"} | set(DATA_PACKAGES) | {
    req.split("==")[0].replace("-", "_") for spec in MODELS.values() for req in spec.packages})
ACTIVE = True  # tests/conftest.py reads it: in this mode a unit test may not skip for a missing prerequisite

_scratch = tempfile.mkdtemp(prefix="adarag-hermetic-")
os.environ["ADARAG_SHARED"] = os.path.join(_scratch, "no-shared")
os.environ["ADARAG_CACHE_DIR"] = os.path.join(_scratch, "cache")
os.environ.pop("ADARAG_TEST_PG_URL", None)


def _hidden(name: str) -> bool:
    return name.partition(".")[0] in HIDDEN


_find_spec = importlib.util.find_spec


def _find_spec_hiding(name: str, package: str | None = None):
    """importlib.util.find_spec, answering None for a hidden package (how adarag looks for model packages)."""
    return None if _hidden(name) else _find_spec(name, package)


class _Hide(importlib.abc.MetaPathFinder):
    """`import` of a hidden package raises ModuleNotFoundError, as when it is not installed."""

    def find_spec(self, name, path=None, target=None):
        if _hidden(name):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by tests.support.hermetic)", name=name)
        return None


importlib.util.find_spec = _find_spec_hiding
sys.meta_path.insert(0, _Hide())
