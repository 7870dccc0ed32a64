"""Haystack metadata filters over N documents in SQLite: compiled to SQL (`SQLStore.filter_document_ids`) vs the
previous path (read every document in batches of 500, run Haystack's `document_matches_filter` on each).

    PYTHONPATH=. python3 bench/filters.py --docs 100000
"""
from __future__ import annotations

import argparse
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from haystack import Document as HDocument
from haystack.utils.filters import document_matches_filter

from indexers.sql_store import SQLStore
from indexers.types import Document

FILTERS: dict[str, dict[str, Any]] = {
    "year>=2020 AND lang==en": {"operator": "AND", "conditions": [
        {"field": "meta.year", "operator": ">=", "value": 2020},
        {"field": "meta.lang", "operator": "==", "value": "en"}]},
    "source.kind in [a, b]": {"field": "meta.source.kind", "operator": "in", "value": ["a", "b"]},
    "date < 2001-01-01": {"field": "meta.date", "operator": "<", "value": "2001-01-01T00:00:00"},
    "NOT id == d7": {"operator": "NOT", "conditions": [{"field": "id", "operator": "==", "value": "d7"}]},
}


def _corpus(n: int, seed: int = 0) -> list[Document]:
    rng = random.Random(seed)
    return [Document(id=f"d{i}", text=f"passage {i} about topic {rng.randrange(100)}", title="", metadata={
        "year": rng.randrange(1990, 2025), "lang": rng.choice(["en", "de", "fr"]),
        "source": {"kind": rng.choice("abcdef")}, "date": f"{rng.randrange(1990, 2010)}-0{rng.randrange(1, 10)}-15",
    }) for i in range(n)]


def _python_path(store: SQLStore, filters: dict[str, Any]) -> list[str]:
    """The evaluator this replaced (indexers/haystack_store.py before the SQL path)."""
    ids = list(dict.fromkeys(p.doc_id for p in store.iter_passages()))
    out = []
    for i in range(0, len(ids), 500):
        for d in store.get_documents(ids[i:i + 500], missing="skip"):
            if document_matches_filter(filters, HDocument(id=d.id, content=d.text, meta=d.metadata)):
                out.append(d.id)
    return out


def _ms(fn: Callable[[], list[str]], repeat: int) -> tuple[float, list[str]]:
    times, out = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, SQLite "
          f"{sqlite3.sqlite_version}, SQLAlchemy {version('sqlalchemy')}, haystack-ai {version('haystack-ai')}; "
          f"{args.docs} documents, median of {args.repeat}")
    with tempfile.TemporaryDirectory() as tmp, SQLStore(f"sqlite:///{Path(tmp) / 'b.sqlite'}") as store:
        store.add_documents(_corpus(args.docs))
        print(f"{'filter':28} {'matches':>8} {'sql ms':>9} {'python ms':>10} {'ratio':>7}")
        for name, f in FILTERS.items():
            ours, got = _ms(lambda: store.filter_document_ids(f), args.repeat)
            base, want = _ms(lambda: _python_path(store, f), args.repeat)
            if got != want:
                raise SystemExit(f"{name}: SQL and Python disagree ({len(got)} vs {len(want)} matches)")
            print(f"{name:28} {len(got):8d} {ours:9.1f} {base:10.1f} {base / ours:6.1f}x")


if __name__ == "__main__":
    main()
