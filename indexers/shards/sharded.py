"""A sharded index opened for search: the coordinator that fans queries out to shard servers and merges.

It offers what retrievers and rag use of an Index (stores, store_of, filter_mask, hits, ids, embedder, ...),
so fusion, reranking, selection and generation run on it unchanged. Global rows are every shard's rows
ordered by write sequence, which is the order one index would hold them in; each shard's top-k comes back
ranked (score desc, local row asc) and local rows ascend with the sequence, so merging by (score desc, global
row asc) gives exactly one index's top-k, ties included.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexers.errors import ConfigError, IndexFormatError, positive_int
from indexers.index import BuildParams, params_from_saved
from indexers.ngram_search import NgramSearchParams, plan_ngrams
from indexers.segments import Segment
from indexers.shards.base import Executor, ShardPool, ShardSpec
from indexers.shards.builder import SEQ, shard_segments
from indexers.shards.layout import ShardsManifest, read_shards, shards_stamp
from indexers.shards.write import DF, TERMS
from indexers.stores.base import Ranked, check_mask, check_store_k
from indexers.stores.encoders import Encoders
from indexers.text import tokenize
from indexers.types import Document, Hit

__all__ = ["ShardedIndex", "ShardedStore", "open_sharded"]


class _Meta:
    """The coordinator's view of one shard: its passage ids, live rows and row write sequences."""

    def __init__(self, root: Path, name: str, folder: str, state: str) -> None:
        segs: list[Segment] = shard_segments(root / folder)
        self.name = name
        self.ids = np.concatenate([s.ids for s in segs])  # [n_rows] str
        live = [s.live for s in segs]
        self.live = np.concatenate([np.ones(s.n_rows, bool) if m is None else m for s, m in zip(segs, live)])
        try:
            self.seq = np.concatenate([np.load(root / state / SEQ / name / f"{s.name}.npy", allow_pickle=False)
                                       for s in segs])  # [n_rows] int64
        except OSError as e:
            raise IndexFormatError(f"sharded index {root}: the write sequences of {name} are missing ({e}); "
                                   f"rebuild it with `adarag index CORPUS --out {root} --shards N --rebuild`") from None
        if self.seq.shape != self.ids.shape or np.any(np.diff(self.seq) <= 0):
            raise IndexFormatError(f"sharded index {root}: the write sequences of {name} do not fit its rows; "
                                   "rebuild it")


class ShardedStore:
    """One store of a sharded index (bm25, dense or ngram): prepare at the coordinator, search on the shards."""

    def __init__(self, name: str, index: "ShardedIndex") -> None:
        self.name = name
        self.index = index

    @property
    def n_rows(self) -> int:
        return len(self.index.ids)

    def prepare(self, queries: Sequence[str], threads: int | None = None) -> Sequence[Any]:
        if self.name == "bm25":
            return [tokenize(q) for q in queries]
        if self.name == "dense":
            return self.index.encoders.embedder(threads).embed_queries(list(queries))  # [n_q, dim]
        return self.index.encoders.ngram_tokens(queries)

    def search_batch(self, queries: Sequence[Any], k: int, mask: np.ndarray | None = None) -> list[Ranked]:
        return self.index.fan_out({self.name: queries}, k, mask)[self.name]


class _Documents:
    """The document-store calls rag makes (get_documents), routed to the shards."""

    def __init__(self, index: "ShardedIndex") -> None:
        self.index = index

    def get_documents(self, ids: Sequence[str], missing: str = "raise") -> list[Document]:
        names = [m.name for m in self.index.metas]
        found = self.index.pool.call("documents", {n: (list(ids),) for n in names})
        by_id = {d.id: d for n in names for d in found[n]}
        if missing == "raise" and any(i not in by_id for i in ids):
            from indexers.errors import NotFoundError

            raise NotFoundError(f"no document {[i for i in ids if i not in by_id][0]!r} in this index")
        return [by_id[i] for i in ids if i in by_id]


class _NgramCounts:
    """`count(pattern)` over all shards (the controller's rarity feature)."""

    def __init__(self, index: "ShardedIndex") -> None:
        self.index = index

    def count(self, pattern: Sequence[int]) -> int:
        got = self.index.pool.call("ngram_count", {m.name: (list(pattern),) for m in self.index.metas})
        return int(sum(got.values()))


class ShardedIndex:
    """An opened sharded index; `pool` hosts its shard servers (in-process or Ray actors)."""

    def __init__(self, root: Path, manifest: ShardsManifest, pool: ShardPool, metas: list[_Meta],
                 executor: Executor, replicas: int, verify: bool, stamp: tuple[int, int, int] | None) -> None:
        self.root, self.manifest, self.pool, self.metas = root, manifest, pool, metas
        self.executor, self.replicas, self.verify, self.stamp = executor, replicas, verify, stamp
        self.params: BuildParams = params_from_saved(manifest.params)
        self.encoders = Encoders(self.params.dense, self.params.ngram)
        seq = np.concatenate([m.seq for m in metas]) if metas else np.empty(0, np.int64)
        order = np.argsort(seq, kind="stable")
        self.ids = (np.concatenate([m.ids for m in metas]) if metas else np.empty(0, "U1"))[order]  # [n_rows]
        pos = np.empty(len(order), np.int64)
        pos[order] = np.arange(len(order))
        sizes = np.cumsum([0] + [len(m.ids) for m in metas])
        self.global_of = {m.name: pos[sizes[i]:sizes[i + 1]] for i, m in enumerate(metas)}  # local -> global row
        self._owner = np.repeat(np.arange(len(metas)), np.diff(sizes))[order]  # [n_rows] shard number
        self._local = np.concatenate([np.arange(len(m.ids)) for m in metas] or [np.empty(0, np.int64)])[order]
        live = np.concatenate([m.live for m in metas]) if metas else np.empty(0, bool)
        self.live = None if live.all() else live[order]
        self._df: dict[str, int] | None = None
        info = pool.call("info", {m.name: () for m in metas})
        self.n_tokens = sum(i["n_tokens"] for i in info.values())
        self.store = _Documents(self)
        self.ngram = _NgramCounts(self) if "ngram" in self.params.stores else None
        self._stores = {s: ShardedStore(s, self) for s in self.params.stores}

    # ---------------------------------------------------------------- what rag and retrievers use

    @property
    def stores(self) -> tuple[str, ...]:
        return self.params.stores

    @property
    def generation(self) -> int:
        return self.manifest.generation

    def store_of(self, name: str) -> ShardedStore:
        st = self._stores.get(name)
        if st is None:
            raise ConfigError(f"this index has no {name} store (it has {', '.join(self.stores)}); rebuild with "
                              f"`adarag index CORPUS --out {self.root} --shards N --rebuild --stores ...`")
        return st

    def df(self, term: str) -> int:
        """A term's live df over the whole collection (the writer's reduction of the shards' tables)."""
        if self._df is None:
            folder = self.root / self.manifest.state / "bm25"
            terms = json.loads((folder / TERMS).read_text(encoding="utf-8"))
            self._df = dict(zip(terms, np.load(folder / DF, allow_pickle=False).tolist()))
        return self._df.get(term, 0)

    def search_stores(self, names: Sequence[str], queries: Sequence[str], k: int, mask: np.ndarray | None = None,
                      threads: int | None = None) -> list[list[Ranked]]:
        """Index.search_stores over the shards: every store's shard work goes out together (one round trip;
        two with n-grams over several shards), then each store's lists merge exactly."""
        prepared = {n: self.store_of(n).prepare(queries, threads) for n in names}
        got = self.fan_out(prepared, k, mask)
        return [got[n] for n in names]

    def fan_out(self, prepared: Mapping[str, Sequence[Any]], k: int, mask: np.ndarray | None = None
                ) -> dict[str, list[Ranked]]:
        """store -> per query its global top-k, from the stores' prepared queries (ShardedStore.prepare)."""
        k, mask = check_store_k(k), check_mask(mask, len(self.ids))
        n_q = {len(q) for q in prepared.values()}
        if not prepared or n_q == {0}:
            return {n: [] for n in prepared}
        names = [m.name for m in self.metas]
        if not names:  # every shard is empty
            return {n: [(np.empty(0, np.int64), np.empty(0, np.float64)) for _ in qs] for n, qs in prepared.items()}
        masks = {n: None if mask is None else mask[self.global_of[n]] for n in names}
        alone = len(names) == 1  # a lone shard's n-gram counts are the collection's: it plans itself
        reqs: dict[str, dict[str, tuple[Any, ...]]] = {n: {} for n in names}
        for store, qs in prepared.items():
            if store == "bm25":
                dfs = [{t: self.df(t) for t in dict.fromkeys(q)} for q in qs]
                for n in names:
                    reqs[n]["bm25"] = (list(qs), dfs, k, masks[n])
            elif store == "dense":
                for n in names:
                    reqs[n]["dense"] = (np.asarray(qs), k, masks[n])
            else:
                qs = [list(map(int, q)) for q in qs]
                for n in names:
                    reqs[n].update({"ngram_alone": (qs, k, masks[n])} if alone else {"ngram_counts": (qs,)})
        got = self.pool.call("search", {n: (r,) for n, r in reqs.items()})
        if "ngram" in prepared:
            qs = reqs[names[0]]["ngram_alone" if alone else "ngram_counts"][0]
            if alone:
                got[names[0]]["ngram"] = got[names[0]].pop("ngram_alone")
            else:
                plans = []
                for i in range(len(qs)):
                    total: Counter[tuple[int, int]] = Counter()
                    for n in names:
                        total.update(got[n]["ngram_counts"][i])
                    plans.append(plan_ngrams(dict(total), self.n_tokens, NgramSearchParams()))
                per = self.pool.call("ngram", {n: (qs, plans, k, masks[n]) for n in names})
                for n in names:
                    got[n]["ngram"] = per[n]
        return {store: [self.merge([(n, got[n][store][i]) for n in names], k) for i in range(len(qs))]
                for store, qs in prepared.items()}

    def merge(self, per_shard: Sequence[tuple[str, Ranked]], k: int) -> Ranked:
        """One query's shard top-k lists (local rows) -> the global top-k, (score desc, global row asc)."""
        rows = np.concatenate([self.global_of[n][np.asarray(r, np.int64)] for n, (r, _) in per_shard])
        scores = np.concatenate([np.asarray(s) for _, (_, s) in per_shard])
        order = np.lexsort((rows, -scores))[:k]
        return rows[order], scores[order]

    def filter_mask(self, filters: Mapping[str, Any] | None) -> np.ndarray | None:
        if filters is None:
            return None
        got = self.pool.call("filter_mask", {m.name: (filters,) for m in self.metas})
        mask = np.zeros(len(self.ids), dtype=bool)
        for m in self.metas:
            mask[self.global_of[m.name]] = got[m.name]
        return mask

    def live_rows(self) -> np.ndarray:
        return np.arange(len(self.ids), dtype=np.int64) if self.live is None else np.flatnonzero(self.live)

    def hits(self, rows: Sequence[int], scores: Sequence[float]) -> list[Hit]:
        rows = np.asarray(rows, np.int64)
        owner = self._owner[rows]
        args = {}
        for s in np.unique(owner).tolist():
            at = np.flatnonzero(owner == s)
            args[self.metas[s].name] = (self._local[rows[at]].tolist(), [float(scores[i]) for i in at.tolist()])
        got = self.pool.call("hits", args)
        out: list[Hit | None] = [None] * len(rows)
        for s in np.unique(owner).tolist():
            for i, h in zip(np.flatnonzero(owner == s).tolist(), got[self.metas[s].name]):
                out[i] = h
        return out  # type: ignore[return-value]

    def holds_document(self, doc_id: str) -> bool:
        return bool(self.store.get_documents([doc_id], missing="skip"))

    def is_stale(self) -> bool:
        return shards_stamp(self.root) != self.stamp

    def disk_stamp(self) -> tuple[int, int, int] | None:
        return shards_stamp(self.root)

    def embedder(self, threads: int | None = None):
        return self.encoders.embedder(threads)

    def ngram_tokenizer(self):
        return self.encoders.ngram_tokenizer()

    def ngram_tokens(self, text: str) -> list[int]:
        return self.encoders.ngram_tokens([text])[0]

    def share_models(self, other: Any) -> None:
        self.encoders.share(other.encoders)

    def reopen(self, verify: bool | None = None) -> "ShardedIndex":
        """The newest published generation, on the same executor."""
        return open_sharded(self.root, executor=self.executor, replicas=self.replicas,
                            verify=self.verify if verify is None else verify)

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> "ShardedIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_sharded(root: str | Path, *, executor: Executor | None = None, replicas: int = 1,
                 verify: bool = True) -> ShardedIndex:
    """Open a sharded index: a server per non-empty shard on `executor` (default in-process), `replicas` each."""
    from indexers.shards.local import LocalExecutor

    positive_int(replicas, "replicas")
    executor = executor or LocalExecutor()
    root = Path(root).expanduser().resolve()
    for attempt in range(3):
        stamp = shards_stamp(root)
        m = read_shards(root)
        try:
            metas = [_Meta(root, e.name, e.dir, m.state) for e in m.shards if e.dir]
            specs = [ShardSpec(str(root), e.name, e.dir, m.state, verify) for e in m.shards if e.dir]
            pool = executor.serve(specs, replicas)
        except IndexFormatError:
            if attempt == 2 or shards_stamp(root) == stamp:
                raise
            continue  # a writer published meanwhile: open the new generation
        try:
            return ShardedIndex(root, m, pool, metas, executor, replicas, verify, stamp)
        except BaseException:
            pool.close()
            raise
    raise AssertionError("unreachable")
