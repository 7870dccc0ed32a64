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
