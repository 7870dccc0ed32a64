"""Helpers shared by tests/unit/rag/test_sdk_arguments.py and tests/integration/rag/test_sdk_arguments.py."""
from __future__ import annotations

import pytest


@pytest.fixture()
def nothing_heavy(monkeypatch):
    """Opening the index (a checksum pass over every file) or loading a generator fails the test."""
    import rag.generator
    import rag.sdk

    def heavy(*a, **k):
        raise AssertionError("opened the index or loaded a model before the arguments were checked")

    monkeypatch.setattr(rag.sdk, "open_index", heavy)
    monkeypatch.setattr(rag.generator.Generator, "load", heavy)
