"""indexers.ngram: build/save/load round trip, validation on load, and the real Qwen tokenizer on HotpotQA."""
from __future__ import annotations

import json

import numpy as np
import pytest

from indexers.errors import ConfigError, CorpusError, IndexFormatError
from indexers.ngram import SEP, NgramParams, build_ngram, encode, load_ngram, ngram_text, ngram_tokenizer

PASSAGES = [[5, 6, 7, 5, 6], [], [6, 7, 8], [5, 6, 7], [9]]


def naive_rows_offsets(passages, pat):
    out = []
    for r, p in enumerate(passages):
        for o in range(len(p) - len(pat) + 1):
            if p[o:o + len(pat)] == pat:
                out.append((r, o))
    return out


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


def test_real_tokenizer_round_trip(hotpot_dir, tmp_path):
    pytest.importorskip("transformers")
    docs = [json.loads(line) for _, line in zip(range(20), open(hotpot_dir / "corpus.jsonl", encoding="utf-8"))]
    tok = ngram_tokenizer(NgramParams())
    texts = [ngram_text(d["text"], d["title"]) for d in docs]
    ids = encode(tok, texts)
    assert tok.decode(ids[0]) == texts[0]
    idx = build_ngram(ids)
    idx.save(tmp_path / "ng")
    idx = load_ngram(tmp_path / "ng")
    phrase = encode(tok, [ngram_text("Corliss Archer")])[0]
    rows, offs = idx.locate(phrase)
    assert 0 in rows.tolist()  # the "Meet Corliss Archer" paragraph
    r, o = int(rows[0]), int(offs[0])
    assert ids[r][o:o + len(phrase)] == phrase
    assert idx.count(phrase) == sum(len(naive_rows_offsets([p], phrase)) for p in ids)
    nxt, cnt = idx.continuations(phrase, 3)
    assert len(nxt) and cnt[0] >= 1
    draft = encode(tok, [" I heard that Meet Corliss Archer, a program from radio"])[0]
    m = idx.longest_suffix_match(draft)
    assert m.length >= 8 and m.row == 0


def test_fast_tokenizer_gives_transformers_ids(hotpot_dir):
    """ngram_tokenizer runs tokenizer.json without transformers; its ids must be the generator's, on real text
    and on the edge cases (unicode, control characters, digits, long runs, empty)."""
    transformers = pytest.importorskip("transformers")
    from indexers.model_cache import ensure_hf_dir

    ref = transformers.AutoTokenizer.from_pretrained(str(ensure_hf_dir(NgramParams().tokenizer, progress=False)))
    tok = ngram_tokenizer(NgramParams())
    docs = [json.loads(line) for _, line in zip(range(300), open(hotpot_dir / "corpus.jsonl", encoding="utf-8"))]
    texts = [ngram_text(d["text"], d["title"]) for d in docs] + [
        "", " ", "  two  spaces", "Zürich – Ærø ‘quoted’ 東京 🙂", "tab\there\nnewline\r\n", "x" * 5000,
        "1234567890 3.14159 1e-9", "<|endoftext|> <|im_start|>"]
    assert encode(tok, texts) == [list(ids) for ids in ref(texts, add_special_tokens=False)["input_ids"]]
    assert tok(texts[3])["input_ids"] == ref(texts[3], add_special_tokens=False)["input_ids"]  # one str
    ids = encode(tok, [texts[0]])[0]
    assert tok.convert_ids_to_tokens(ids) == ref.convert_ids_to_tokens(ids)
    assert tok.decode(ids) == texts[0]


def test_whitespace_runs_never_decide_a_match(tmp_path):
    """Issue #17: 3 of 15 HotpotQA phrases were not found because the corpus has two spaces after full stops."""
    pytest.importorskip("transformers")
    tok = ngram_tokenizer(NgramParams())
    text = "It ended in 1945.  The next  film\nfollowed in 1947."
    for collapse, found in ((True, 1), (False, 0)):  # False: how stores built before the fix keep working
        idx = build_ngram(encode(tok, [ngram_text(text, "Film", collapse)]), NgramParams(collapse_spaces=collapse))
        phrase = encode(tok, [ngram_text("in 1945. The next film followed", collapse_spaces=collapse)])[0]
        assert idx.count(phrase) == found
    idx.save(tmp_path / "old")
    meta = json.loads((tmp_path / "old" / "params.json").read_text())
    del meta["params"]["collapse_spaces"]  # a store saved before the field existed
    (tmp_path / "old" / "params.json").write_text(json.dumps(meta))
    assert load_ngram(tmp_path / "old").params.collapse_spaces is False
