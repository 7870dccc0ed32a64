import pytest

from indexers.errors import ConfigError
from indexers.index import open_index
from retrievers.search import Retriever


@pytest.fixture()
def retriever(hash_index):
    with open_index(hash_index) as ix:
        yield Retriever(ix)


def test_each_store_returns_ranked_hits_with_text(retriever):
    for store in ("bm25", "dense", "fused"):
        hits = retriever.search("Shirley Temple film career", store, 5)
        assert 1 <= len(hits) <= 5 and all(h.text for h in hits)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert retriever.default_store == "fused"
    bm25 = retriever.search("Shirley Temple film career", "bm25", 1)[0]
    assert bm25.title == "Shirley Temple"


def test_fused_is_rrf_over_both_stores_at_depth(retriever):
    from retrievers.fusion import reciprocal_rank_fusion

    q = "Shirley Temple film career"
    (sr, _), = retriever.rows_batch([q], "bm25", retriever.depth)
    (dr, _), = retriever.rows_batch([q], "dense", retriever.depth)
    want = reciprocal_rank_fusion([sr.tolist(), dr.tolist()])[:10]
    (fr, fs), = retriever.rows_batch([q], "fused", 10)
    assert fr.tolist() == [r for r, _ in want] and fs == pytest.approx([s for _, s in want])


def test_batch_equals_single(retriever):
    qs = ["Corliss Archer radio", "Kiss and Tell 1945"]
    batch = retriever.search_batch(qs, "bm25", 5)
    assert [[h.id for h in hs] for hs in batch] == [[h.id for h in retriever.search(q, "bm25", 5)] for q in qs]


@pytest.mark.parametrize("query, err, msg", [
    ("", ConfigError, "empty"),
    ("   ", ConfigError, "empty"),
    ("x" * 100_000, ConfigError, "100,000 characters.*max_query_chars"),
    (42, TypeError, "must be a str"),
    (["a list"], TypeError, "must be a str"),
])
def test_bad_queries_get_clear_errors(retriever, query, err, msg):
    with pytest.raises(err, match=msg):
        retriever.search(query)


def test_bad_store_and_k(retriever):
    with pytest.raises(ConfigError, match="valid: bm25, dense, ngram, fused"):
        retriever.search("q", "ngramz")
    for k in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="k must be"):
            retriever.search("q", "bm25", k)


def test_query_of_only_unknown_terms_returns_nothing_from_bm25(retriever):
    assert retriever.search("zzqqxx", "bm25", 5) == []
