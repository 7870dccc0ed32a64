"""Shared fixtures: a small real corpus (HotpotQA paragraphs from ../shared) and a built index over it."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

from eval.shared import shared_data
from tests.prereq import require

# Property tests explore random inputs locally; in CI (CI=true) they are derandomized so a landing does not
# depend on a draw, and no test has a per-example deadline (a busy 2-core machine makes timings meaningless).
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

HOTPOT = shared_data("hotpotqa")  # ADARAG_SHARED, else ../shared beside the checkout


def pytest_runtest_setup(item):
    """`@needs(ok, reason)` (tests.prereq): skip when a prerequisite is missing, fail in CI."""
    for mark in item.iter_markers("needs"):
        require(mark.kwargs["ok"], mark.kwargs["reason"])


def pytest_collection_modifyitems(config, items):
    """`slow` tests run only with -m slow or ADARAG_RUN_SLOW=1."""
    if os.environ.get("ADARAG_RUN_SLOW") == "1" or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow or ADARAG_RUN_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def hotpot_dir() -> Path:
    require((HOTPOT / "corpus.jsonl").exists(),
            f"the shared HotpotQA data is not at {HOTPOT}: set ADARAG_SHARED to the folder holding data/")
    return HOTPOT


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory, hotpot_dir) -> Path:
    """The first 300 HotpotQA paragraphs (30 questions' distractor sets) as a JSONL corpus."""
    out = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    with open(hotpot_dir / "corpus.jsonl", encoding="utf-8") as f, open(out, "w", encoding="utf-8") as g:
        for i, line in zip(range(300), f):
            rec = json.loads(line)
            g.write(json.dumps({"id": rec["_id"], "title": rec["title"], "text": rec["text"]}) + "\n")
    return out


@pytest.fixture(scope="session")
def hash_index(tmp_path_factory, small_corpus) -> Path:
    """BM25 + dense (hash embedder) index over `small_corpus`, built once per session; treat it as read-only."""
    from indexers.dense import DenseParams
    from indexers.embedders import HashEmbedder
    from indexers.index import BuildParams, build_index
    from indexers.ingest import read_corpus

    root = tmp_path_factory.mktemp("idx") / "index"
    build_index(read_corpus([small_corpus]), root, BuildParams(dense=DenseParams(embedder="hash")),
                embedder=HashEmbedder(64), progress=False)
    return root
