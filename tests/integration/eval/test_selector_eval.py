"""eval/selector_eval.py: fixed top-k at a budget, and the selector-vs-top-k table on a small HotpotQA index."""
from __future__ import annotations

import json

from eval.selector_eval import compare


def test_compare_on_a_small_index(hash_index, hotpot_dir, tmp_path):
    qa = [json.loads(x) for x in (hotpot_dir / "qa.jsonl").read_text(encoding="utf-8").splitlines()[:8]]
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in qa), encoding="utf-8")
    rows = compare(hash_index, path, store="bm25", budgets=(100, 1200))
    assert len(rows) == 6 and all(r["n"] == 8 for r in rows)
    by = {(r["budget"], r["strategy"]): r for r in rows}
    for s in ("top-k prefix", "top-4", "selector"):
        assert by[(100, s)]["tokens"] <= 100 and by[(1200, s)]["tokens"] <= 1200
        assert 0 <= by[(100, s)]["support_recall"] <= by[(1200, s)]["support_recall"] <= 1
    assert by[(1200, "top-4")]["passages"] <= 4 < by[(1200, "top-k prefix")]["passages"]
    assert by[(1200, "top-k prefix")]["support_recall"] >= 0.5  # BM25 finds supporting paragraphs of these
