"""Writes tests/data/tokenizer/: a small byte-level BPE (Hugging Face tokenizer.json + config.json) that the
hermetic tests index n-grams and count tokens with, instead of a model package's tokenizer. Deterministic:
rerun `python3 tests/data/make_tokenizer.py` and the files do not change."""
from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

OUT = Path(__file__).resolve().parent / "tokenizer"
# Any text still encodes (byte-level), so a small vocabulary trained on a few English sentences suffices.
TEXT = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Paris is the capital of France; Berlin is the capital of Germany.",
    "A passage about the history of science, film, music and the Eiffel Tower, completed in 1889.",
    "Who wrote the Iliad? Homer is said to have written it in ancient Greece.",
    "Numbers like 1999, 2024 and 3.14 appear in questions and answers.",
] * 4


def main() -> None:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(TEXT, trainers.BpeTrainer(vocab_size=400, show_progress=False,
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    OUT.mkdir(exist_ok=True)
    tok.save(str(OUT / "tokenizer.json"))
    (OUT / "config.json").write_text(json.dumps({"model_type": "adarag-test-tokenizer"}) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
