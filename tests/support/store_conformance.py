"""StoreConformance: the tests every registered store passes (Haystack's DocumentStore test mixins are the model).

A subclass names its `kind` and `params` and gives a brute-force `reference` ranking; the mixin builds the store
over a small corpus with offline encoders (hash embedder, a word tokenizer) and checks it against that reference.
"""
from __future__ import annotations

import shutil
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexers.dense import DenseParams
from indexers.embedders import HashEmbedder
from indexers.errors import ConfigError, IndexFormatError
from indexers.ingest import passage_hash
from indexers.ngram import NgramParams
from indexers.segments import SegmentPart
from indexers.stores import STORE_KINDS, Store
from indexers.stores.base import BuildEnv, LoadEnv, StoreKind
from indexers.stores.encoders import Encoders
from indexers.text import DEFAULT_ANALYZER
from indexers.types import Passage

_TEXTS = [
    ("Paris", "Paris is the capital of France and its largest city."),
    ("Berlin", "Berlin is the capital of Germany; the city has museums and rivers."),
    ("", "The river Seine flows through Paris to the sea."),
    ("Rivers", "A river flows to the sea; rivers carry water and the sea is salty."),
    ("Berlin", "Berlin is the capital of Germany; the city has museums and rivers."),  # a duplicate: ties
    ("", "Museums in the capital of France hold paintings and statues."),
    ("Cats", "cats cats cats sleep all day"),
    ("", "Germany borders France; the Rhine river marks part of the border."),
    ("Salt", "salty water salty sea"),
    ("", "nothing in common here"),
    ("Paris", "the city of light, Paris, France"),
]
PASSAGES = [Passage(id=f"p{i}", doc_id=f"d{i}", title=t, text=x, end=len(x)) for i, (t, x) in enumerate(_TEXTS)]
QUERIES = ["capital of France", "river flows to the sea", "Berlin museums", "cats", "salty sea water",
           "the the the", "zebra unicorn", "", "capital of Germany city rivers museums"]


class WordTokenizer:
    """A stand-in for a Hugging Face fast tokenizer: one stable id per lower-cased word (crc32 mod 4096)."""

    def __call__(self, texts: Sequence[str], add_special_tokens: bool = False) -> dict[str, list[list[int]]]:
        return {"input_ids": [[zlib.crc32(w.encode()) % 4096 for w in t.lower().split()] for t in texts]}


def offline_encoders() -> Encoders:
    return Encoders(DenseParams(embedder="hash"), NgramParams(), embedder=HashEmbedder(32), tokenizer=WordTokenizer())


def assert_ranked(rows: np.ndarray, scores: np.ndarray, n_rows: int, k: int, row_ties: bool = True) -> None:
    """A valid ranking: at most k distinct rows in range, scores non-increasing, exact ties by row ascending
    (unless not `row_ties`: FAISS orders equal scores its own way)."""
    assert rows.dtype == np.int64 and rows.shape == scores.shape and len(rows) <= k
    assert len(set(rows.tolist())) == len(rows) and all(0 <= r < n_rows for r in rows.tolist())
    assert np.all(np.diff(scores) <= 0)
    for a in range(len(rows) - 1):
        if row_ties and scores[a] == scores[a + 1]:
            assert rows[a] < rows[a + 1]


class StoreConformance:
    """Mixin: subclass with `kind`, `params`, `atol` (0 = bit-exact) and `reference(query, passages)`."""

    kind: StoreKind
    params: Any
    atol: float = 0.0

    def reference(self, query: str, passages: Sequence[Passage]) -> tuple[np.ndarray, np.ndarray]:
        """Every hit of `query` over `passages` by brute force -> (rows, scores) ordered (score desc, row asc)."""
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------------- fixtures

    @pytest.fixture(scope="class")
    def built(self, tmp_path_factory) -> Path:
        d = tmp_path_factory.mktemp(self.kind.name) / self.kind.name
        hashes = np.array([passage_hash(p) for p in PASSAGES])
        n = self.kind.build(PASSAGES, d, self.params, BuildEnv(offline_encoders(), hashes))
        assert n == len(PASSAGES)  # nothing to reuse on a first build
        return d

    @pytest.fixture(scope="class")
    def store(self, built) -> Store:
        return self.kind.load(built, self._env(built))

    def _env(self, d: Path) -> LoadEnv:
        return LoadEnv(d.parent, offline_encoders(), {"analyzer": DEFAULT_ANALYZER.name})

    def _search(self, store: Store, queries: Sequence[str], k: int, mask: np.ndarray | None = None):
        return store.search_batch(store.prepare(queries), k, mask)

    def _assert_matches_reference(self, got, full, k: int) -> None:
        """got is the top-k of the full reference ranking: exactly when atol == 0, else up to near-ties."""
        rows, scores = got
        want_rows, want_scores = full[0][:k], full[1][:k]
        if self.atol == 0:
            assert rows.tolist() == want_rows.tolist()
            assert scores.tolist() == want_scores.tolist()
            return
        assert len(rows) == len(want_rows)
        np.testing.assert_allclose(scores, want_scores, rtol=0, atol=self.atol)
        by_row = dict(zip(full[0].tolist(), full[1].tolist()))
        np.testing.assert_allclose(scores, [by_row.get(r, np.nan) for r in rows.tolist()], rtol=0, atol=self.atol)

    # ----------------------------------------------------------------------------------------------- tests

    def test_is_a_registered_store(self, store):
        assert STORE_KINDS[self.kind.name] is self.kind and store.name == self.kind.name
        assert isinstance(store, Store)
        assert store.n_rows == len(PASSAGES) and store.stats().n_rows == len(PASSAGES)

    def test_ranked_output_matches_the_reference(self, store):
        for k in (1, 3, 5):
            for q, got in zip(QUERIES, self._search(store, QUERIES, k)):
                assert_ranked(*got, store.n_rows, k, row_ties=self.atol == 0)
                self._assert_matches_reference(got, self.reference(q, PASSAGES), k)

    def test_k_larger_than_n_returns_every_hit(self, store):
        k = len(PASSAGES) + 7
        for q, got in zip(QUERIES, self._search(store, QUERIES, k)):
            full = self.reference(q, PASSAGES)
            assert len(got[0]) == len(full[0]) <= len(PASSAGES)
            self._assert_matches_reference(got, full, k)

    def test_empty_query(self, store):
        (got,) = self._search(store, [""], 4)
        assert len(got[0]) <= 4
        self._assert_matches_reference(got, self.reference("", PASSAGES), 4)
        assert store.search_batch(store.prepare([]), 4) == []

    def test_batch_equals_single(self, store):
        batch = self._search(store, QUERIES, 4)
        for q, (rows, scores) in zip(QUERIES, batch):
            ((r1, s1),) = self._search(store, [q], 4)
            assert rows.tolist() == r1.tolist() and scores.tolist() == s1.tolist()

    def test_bad_k_and_mask_are_config_errors(self, store):
        prepared = store.prepare(["capital"])
        for k in (0, -1, 2.5, True):
            with pytest.raises(ConfigError, match="k must be"):
                store.search_batch(prepared, k)
        for mask in (np.ones(store.n_rows + 1, bool), np.ones(store.n_rows, np.int64), np.ones((1, store.n_rows), bool)):
            with pytest.raises(ConfigError, match="mask must be"):
                store.search_batch(prepared, 3, mask)

    @settings(suppress_health_check=[HealthCheck.differing_executors])  # one mixin test, one class per store
    @given(data=st.data())
    def test_masked_search_is_exact(self, store, data):
        """The masked top-k is the unmasked ranking with masked rows left out: no masked row, no short list."""
        mask = np.array(data.draw(st.lists(st.booleans(), min_size=store.n_rows, max_size=store.n_rows)), bool)
        k = data.draw(st.integers(1, store.n_rows + 2))
        q = data.draw(st.sampled_from(QUERIES))
        ((rows, scores),) = self._search(store, [q], k, mask)
        assert mask[rows].all()
        ((all_rows, all_scores),) = self._search(store, [q], store.n_rows)
        keep = mask[all_rows]
        self._assert_matches_reference((rows, scores), (all_rows[keep], all_scores[keep]), k)
        full_rows, full_scores = self.reference(q, PASSAGES)
        keep = mask[full_rows]
        self._assert_matches_reference((rows, scores), (full_rows[keep], full_scores[keep]), k)

    def test_load_round_trip(self, store, built, tmp_path):
        copy = tmp_path / self.kind.name
        shutil.copytree(built, copy)
        again = self.kind.load(copy, self._env(copy))
        assert again.n_rows == store.n_rows and again.stats().n_rows == store.stats().n_rows
        assert again.stats().total_length == store.stats().total_length
        assert dict(again.stats().df) == dict(store.stats().df)
        for a, b in zip(self._search(store, QUERIES, 5), self._search(again, QUERIES, 5)):
            assert a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist()

    @pytest.mark.parametrize("damage", ["truncate", "flip_first_byte", "delete"])
    def test_corrupt_file_is_refused(self, built, tmp_path, damage):
        files = sorted(p.name for p in built.iterdir())
        assert files
        for name in files:
            copy = tmp_path / f"{damage}-{name}" / self.kind.name
            shutil.copytree(built, copy)
            p = copy / name
            raw = p.read_bytes()
            if damage == "truncate":
                p.write_bytes(raw[: len(raw) // 2])
            elif damage == "flip_first_byte":
                p.write_bytes(bytes([raw[0] ^ 0xFF]) + raw[1:])
            else:
                p.unlink()
            with pytest.raises(IndexFormatError):
                self.kind.load(copy, self._env(copy))

    def test_segments_with_deletions_equal_one_segment_of_the_live_rows(self, tmp_path):
        """The segment contract: the store over three segments with deleted rows ranks (and scores) exactly
        as one segment built over the live passages, rows mapped back to global rows."""
        hashes = np.array([passage_hash(p) for p in PASSAGES])
        enc, dead = offline_encoders(), {1, 4, 9}
        parts = []
        for a, b in ((0, 4), (4, 8), (8, len(PASSAGES))):
            d = tmp_path / f"seg{a}"
            self.kind.build(PASSAGES[a:b], d / self.kind.name, self.params, BuildEnv(enc, hashes[a:b]))
            first = [p for i, p in enumerate(PASSAGES[a:b], a) if i in dead][:1]  # two deletion rounds
            rest = [p for i, p in enumerate(PASSAGES[a:b], a) if i in dead][1:]
            deleted = None
            for n, gone in enumerate((first, rest)):
                if gone:
                    out = d / f"del{n}" / self.kind.name
                    self.kind.write_deleted(SegmentPart(d / self.kind.name, deleted, None, b - a), gone, out,
                                            self.params, enc)
                    deleted = out
            live = np.array([i not in dead for i in range(a, b)])
            parts.append(SegmentPart(d / self.kind.name, deleted, None if live.all() else live, b - a))
        state = tmp_path / "state"
        self.kind.write_state(None, None, [], [], parts, state, self.params, enc)
        store = self.kind.open(parts, state if state.exists() else None, self._env(tmp_path / "x"))
        assert store.n_rows == len(PASSAGES)
        rows_of = np.array([i for i in range(len(PASSAGES)) if i not in dead])
        live_passages = [PASSAGES[i] for i in rows_of]
        for q, got in zip(QUERIES, self._search(store, QUERIES, len(PASSAGES))):
            ref_rows, ref_scores = self.reference(q, live_passages)
            assert not set(got[0].tolist()) & dead
            self._assert_matches_reference(got, (rows_of[ref_rows], ref_scores), len(PASSAGES))
