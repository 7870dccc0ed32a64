"""Helpers shared by tests/unit/indexers/test_ngram.py and tests/integration/indexers/test_ngram.py."""
from __future__ import annotations



def naive_rows_offsets(passages, pat):
    out = []
    for r, p in enumerate(passages):
        for o in range(len(p) - len(pat) + 1):
            if p[o:o + len(pat)] == pat:
                out.append((r, o))
    return out
