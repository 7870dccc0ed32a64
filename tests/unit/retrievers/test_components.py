"""retrievers/components.py: Haystack components agree with the plain Retriever / selector, serialise, and run in
a Pipeline that survives a YAML round trip; the example script runs; haystack stays optional."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("haystack", reason="the [haystack] extra is not installed")

from haystack import Document

from indexers.errors import ConfigError
from indexers.types import passage_text
from retrievers.components import (
    AdaragBM25Retriever,
    AdaragDenseRetriever,
    AdaragFusedRetriever,
    AdaragNgramRetriever,
    AdaragPassageSelector,
    document_to_hit,
    hit_to_document,
)
from tests.support.data import TOKENIZER

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("comp", [
    AdaragBM25Retriever(index="/some/index", top_k=3, threads=1),
    AdaragDenseRetriever(index="/some/index", depth=50),
    AdaragNgramRetriever(index="/some/index", verify=False),
    AdaragFusedRetriever(index="/some/index", stores="bm25+ngram", rrf_k=10),
    AdaragPassageSelector(budget_tokens=300, tokenizer=None, max_passages=5, min_passages=1, gap=0.5,
                          min_score_ratio=0.1, redundancy=None),
])
def test_to_dict_from_dict_round_trip_is_cheap(comp):
    d = comp.to_dict()
    assert d["type"] == f"retrievers.components.{type(comp).__name__}"
    json.dumps(d)  # JSON-serialisable
    back = type(comp).from_dict(d)
    assert type(back) is type(comp) and back.to_dict() == d  # and no index was opened: /some/index does not exist


def _docs(n: int) -> list[Document]:
    texts = ["alpha beta gamma delta", "beta gamma delta alpha", "one two three four five six", "seven eight",
             "nine ten eleven", "twelve thirteen fourteen fifteen"]
    return [Document(id=f"p{i}", content=texts[i % len(texts)] + f" n{i}", score=1.0 - 0.01 * i,
                     meta={"title": f"T{i}"}) for i in range(n)]


def test_selector_respects_the_budget_in_tokens_of_what_the_prompt_shows_and_explains_drops():
    """The budget counts each passage as the prompt shows it (indexers.types.passage_text), in the named
    tokenizer's tokens (here the repository's test BPE; the generator's in use)."""
    sel = AdaragPassageSelector(budget_tokens=25, tokenizer=TOKENIZER)
    docs = _docs(6)
    out = sel.run(documents=docs)
    chosen, dropped = out["documents"], out["dropped"]
    assert sorted(d.id for d in chosen + dropped) == sorted(d.id for d in docs)
    counted = sum(sel.count_tokens(passage_text(d.meta["title"], d.content)) for d in chosen)
    assert out["tokens_used"] == counted <= 25 and len(chosen) >= 1
    assert {d.meta["drop_reason"] for d in dropped} <= {"budget", "score_gap", "below_ratio", "redundant",
                                                        "max_passages"}
    assert any(d.meta["drop_reason"] == "budget" for d in dropped)
    # generator tokens, not words: 'alpha beta gamma delta n0' is 5 words but more Qwen tokens with the title
    assert sel.count_tokens("wrought-iron lattice") > len("wrought-iron lattice".split())
    # a larger per-run budget takes more
    assert len(sel.run(documents=docs, budget_tokens=1000)["documents"]) > len(chosen)


def test_selector_drops_near_duplicates():
    a = Document(id="a", content="the same words here", score=2.0)
    b = Document(id="b", content="the same words here", score=1.9)
    out = AdaragPassageSelector(tokenizer=None).run(documents=[a, b])
    assert [d.id for d in out["documents"]] == ["a"] and out["dropped"][0].meta["drop_reason"] == "redundant"


def test_hit_document_round_trip():
    from indexers.types import Hit

    h = Hit(id="d#1", score=0.5, doc_id="d", title="T", text="body", start=3, end=7)
    assert document_to_hit(hit_to_document(h)) == h


def test_example_pipeline_script_runs():
    env = {**os.environ, "ADARAG_CACHE_DIR": os.environ.get("ADARAG_CACHE_DIR", "/tmp/adarag_cache")}
    r = subprocess.run([sys.executable, str(ROOT / "docs" / "haystack_pipeline.py")], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["chosen"][0][0] == "eiffel" and "1889" in out["chosen"][0][2]
    assert 0 < out["tokens_used"] <= 60


def test_haystack_stays_optional():
    """Without haystack, the components module names the extra and every other retrievers module still imports."""
    code = (
        "import sys; sys.modules['haystack'] = None\n"
        "import retrievers.search, retrievers.selector, retrievers.fusion, retrievers.ngram\n"
        "from indexers.errors import MissingDependencyError\n"
        "try:\n    import retrievers.components\nexcept MissingDependencyError as e:\n    print('MDE', e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "MDE" in r.stdout and "adarag[haystack]" in r.stdout


def test_reranker_component_serialises_and_keeps_order_with_none():
    from retrievers.components import AdaragReranker

    comp = AdaragReranker(reranker="none", depth=5, top_k=3)
    assert AdaragReranker.from_dict(comp.to_dict()).to_dict() == comp.to_dict()
    docs = _docs(6)
    out = comp.run(query="q", documents=docs)["documents"]
    assert [d.id for d in out] == ["p0", "p1", "p2"]
    with pytest.raises(ConfigError, match="unknown reranker"):
        AdaragReranker(reranker="bogus").warm_up()
