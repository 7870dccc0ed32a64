"""Both tiers' fixtures and rules. tests/unit is hermetic: it runs in a clone with no ../shared, no model package,
no PostgreSQL and no Ray. tests/integration needs them: there a missing prerequisite (a `require` / `@needs`, or
adarag's own MissingDependencyError naming the package) skips with its reason, and fails in CI (`CI` set).

Fixtures: a small real corpus (HotpotQA paragraphs from ../shared) and a built index over it."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from eval.shared import shared_data
from indexers.errors import MissingDependencyError
from tests.prereq import IN_CI, require

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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """An integration test that stops on MissingDependencyError (a model or data package not installed) is a
    skip with adarag's own message, except in CI; in tests/unit it stays a failure: that tier needs nothing."""
    outcome = yield
    rep = outcome.get_result()
    exc = call.excinfo.value if call.excinfo is not None else None
    if isinstance(exc, MissingDependencyError) and not IN_CI and "integration" in item.path.parts:
        rep.outcome = "skipped"
        rep.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: missing prerequisite: {exc}")
    hermetic = sys.modules.get("tests.support.hermetic")
    if rep.skipped and hermetic is not None and "unit" in item.path.parts and "missing prerequisite" in str(
            rep.longrepr):
        rep.outcome = "failed"  # the hermetic check: a unit test needs nothing from outside the repository


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


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """ADARAG_CACHE_DIR when set (a CI cache keeps conversions), else one temp dir for the session."""
    configured = os.environ.get("ADARAG_CACHE_DIR")
    return Path(configured) if configured else tmp_path_factory.mktemp("adarag-cache")
