"""indexers.ngram: build/save/load round trip, validation on load, and the real Qwen tokenizer on HotpotQA."""
from __future__ import annotations


import numpy as np
import pytest

from indexers.errors import ConfigError, CorpusError, IndexFormatError
from indexers.ngram import SEP, NgramParams, build_ngram, load_ngram
from tests.support.indexers_ngram import naive_rows_offsets

PASSAGES = [[5, 6, 7, 5, 6], [], [6, 7, 8], [5, 6, 7], [9]]


@pytest.fixture()
def small():
    return build_ngram(PASSAGES, NgramParams(occ_rate=64, sa_rate=2))


def test_ops_are_per_passage(small):
    assert small.n_docs == 5 and small.n_tokens == 12
    for pat in ([5, 6], [6, 7], [7, 5], [5, 6, 7], [8], [9], [7, 8, 9], [4]):
        want = naive_rows_offsets(PASSAGES, pat)
        assert small.count(pat) == len(want)
        rows, offs = small.locate(pat)
        assert list(zip(rows.tolist(), offs.tolist())) == want
    assert small.count([8, 9]) == 0  # never across the passage boundary
    assert small.count([SEP]) == 0 and small.count([-1]) == 0
    toks, cnts = small.continuations([6, 7], 5)
    assert toks.tolist() == [5, 8] and cnts.tolist() == [1, 1]  # passage ends are not continuations
    assert small.continuations([6], 1)[0].tolist() == [7]
    m = small.longest_suffix_match([1, 2, 6, 7, 8])
    assert (m.length, m.count, m.row, m.offset) == (3, 1, 2, 0)
    assert small.longest_suffix_match([9, 9]).length == 1
    assert small.count([]) == 12 + 5  # every offset 0..len of every passage
    assert len(small.locate([], limit=100)[0]) == 17
    assert small.locate([5], limit=1)[0].size == 1
    rows = small.interval_rows(*small.interval([5, 6]), 2)
    assert rows.tolist() == [0, 3]


def test_save_load_round_trip(tmp_path, small):
    names = small.save(tmp_path / "ng")
    assert sorted(names) == sorted(p.name for p in (tmp_path / "ng").iterdir())
    assert all(n.endswith(".npy") for n in names if n != "params.json")
    back = load_ngram(tmp_path / "ng")
    assert back.params == small.params and back.nbytes == small.nbytes
    for pat in ([5, 6], [6, 7, 8], [7], []):
        assert back.count(pat) == small.count(pat)
        for a, b in zip(back.locate(pat), small.locate(pat)):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(back.continuations(pat, 3), small.continuations(pat, 3)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["wm_bits", "wm_ckpt", "samples", "doc_starts", "C", "mark_bits", "params"])
def test_corrupt_file_raises(tmp_path, small, name):
    d = tmp_path / "ng"
    small.save(d)
    if name == "params":
        (d / "params.json").write_text("{not json", encoding="utf-8")
    else:
        a = np.load(d / f"{name}.npy").copy()
        if name == "wm_bits":
            a[0, 0] ^= np.uint64(1)  # one flipped bit: checkpoints no longer match
        elif name == "doc_starts":
            a[1] = a[2]
        else:
            a = a[:-1]
        np.save(d / f"{name}.npy", a)
    with pytest.raises(IndexFormatError, match="wm_" if name == "wm_bits" else name):
        load_ngram(d)


def test_missing_file_raises(tmp_path, small):
    small.save(tmp_path / "ng")
    (tmp_path / "ng" / "samples.npy").unlink()
    with pytest.raises(IndexFormatError, match="samples"):
        load_ngram(tmp_path / "ng")


def test_bad_inputs():
    with pytest.raises(CorpusError):
        build_ngram([])
    with pytest.raises(CorpusError):
        build_ngram(["text"])
    with pytest.raises(CorpusError):
        build_ngram([[SEP]])
    with pytest.raises(ConfigError):
        NgramParams(occ_rate=100)
    with pytest.raises(ConfigError):
        build_ngram([[1]]).count("1")
