"""indexers.ngram: build/save/load round trip, validation on load, and the real Qwen tokenizer on HotpotQA."""
from __future__ import annotations

import json

import pytest

from indexers.ngram import NgramParams, build_ngram, encode, load_ngram, ngram_text, ngram_tokenizer
from tests.support.indexers_ngram import naive_rows_offsets


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
