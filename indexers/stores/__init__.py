"""The store registry: name -> StoreKind. Adding a store is one module here and one entry below
(plus its params field in indexers.index.BuildParams, which the manifest records)."""
from __future__ import annotations

from indexers.errors import ConfigError
from indexers.stores.base import Store, StoreKind, StoreStats
from indexers.stores.bm25 import BM25Store
from indexers.stores.dense import DenseStore
from indexers.stores.ngram import NgramStore

__all__ = ["STORE_KINDS", "Store", "StoreKind", "StoreStats", "store_kind"]

STORE_KINDS: dict[str, StoreKind] = {k.name: k for k in (BM25Store, DenseStore, NgramStore)}


def store_kind(name: str) -> StoreKind:
    """The registered kind called `name`; an unknown name is a ConfigError listing the valid ones."""
    kind = STORE_KINDS.get(name)
    if kind is None:
        raise ConfigError(f"unknown store {name!r}; valid stores: {', '.join(STORE_KINDS)}")
    return kind
