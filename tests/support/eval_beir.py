"""Helpers shared by tests/unit/eval/test_beir.py and tests/integration/eval/test_beir.py."""
from __future__ import annotations

import json
from pathlib import Path
import pytest
from indexers.index import BuildParams, build_index
from indexers.ingest import read_corpus


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


DOCS = [
    {"_id": "d1", "title": "Saturn", "text": "Saturn is the sixth planet from the Sun and has bright rings of ice."},
    {"_id": "d2", "title": "Jupiter", "text": "Jupiter is the largest planet, a gas giant with a great red spot."},
    {"_id": "d3", "title": "Baking bread", "text": "Knead the dough, let it rise, then bake the bread in a hot oven."},
    {"_id": "d4", "title": "Sourdough", "text": "Sourdough bread rises with a starter of wild yeast instead of baker's yeast."},
]


QUERIES = [{"_id": "q1", "text": "which planet has rings"}, {"_id": "q2", "text": "how does sourdough bread rise"},
           {"_id": "q3", "text": "unjudged query about nothing"}]


@pytest.fixture()
def beir_dir(tmp_path) -> Path:
    root = tmp_path / "mini"
    _write(root / "corpus.jsonl", "".join(json.dumps(d) + "\n" for d in DOCS))
    _write(root / "queries.jsonl", "".join(json.dumps(q) + "\n" for q in QUERIES))
    _write(root / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td4\t2\nq2\td3\t1\n")
    return root


@pytest.fixture()
def bm25_index(tmp_path, beir_dir) -> Path:
    out = tmp_path / "index"
    build_index(read_corpus(beir_dir / "corpus.jsonl"), out, BuildParams(stores=("bm25",)), progress=False)
    return out
