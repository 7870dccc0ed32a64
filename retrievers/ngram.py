"""SEAL-style n-gram retrieval: kept importable here; the code lives in indexers.ngram_search (the store's layer)."""
from indexers.ngram_search import NgramSearchParams, query_ngrams, search

__all__ = ["NgramSearchParams", "search", "query_ngrams"]
