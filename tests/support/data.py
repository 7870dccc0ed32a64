"""Paths of the repository's own test data (tests/data): what the hermetic tier uses in place of packages."""
from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
TOKENIZER = str(DATA / "tokenizer")
"""A small byte-level BPE (tests/data/make_tokenizer.py): n-grams and token budgets without a model package."""
