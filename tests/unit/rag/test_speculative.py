"""rag/speculative.py without a model: copy drafts propose what follows the longest matching suffix of the
evidence, and bad arguments are clear errors. Exactness against plain decoding on real models:
tests/integration/rag/test_speculative.py."""
from __future__ import annotations

import pytest

from indexers.errors import ConfigError
from rag.speculative import CopyDraft


def test_copy_draft_proposes_what_follows_the_longest_suffix() -> None:
    docs = [[1, 2, 3, 4, 5], [9, 2, 3, 7, 8], [2, 3, 4, 6]]
    c = CopyDraft(docs, max_candidates=3)
    p = c.propose([100, 2, 3], n_prompt=1, k_max=3)  # generated [2, 3]: followed by 4 5 / 7 8 / 4 6
    assert p is not None and p.source == "copy"
    assert sorted(map(tuple, p.candidates)) == [(4, 5), (4, 6), (7, 8)]  # stops at passage ends
    p = c.propose([100, 9, 2, 3], n_prompt=1, k_max=3)  # the longer suffix [9, 2, 3] is unique
    assert p.candidates == [[7, 8]]
    assert c.propose([100, 42], n_prompt=1, k_max=3) is None
    assert c.propose([100], n_prompt=1, k_max=3) is None  # nothing generated yet
    assert CopyDraft([]).propose([1, 2], 0, 4) is None


def test_copy_draft_length_doubles_while_copying_and_resets_on_a_miss() -> None:
    doc = list(range(10, 90))  # one long passage: any generated run of it continues for many tokens
    c = CopyDraft([doc], min_tokens=4, max_tokens=16)
    lengths = []
    for accepted_whole in (True, True, True, True, False, True):
        p = c.propose([0, 10, 11], n_prompt=1, k_max=64)
        assert p is not None and p.candidates[0] == doc[2: 2 + len(p.candidates[0])]
        lengths.append(len(p.candidates[0]))
        c.feedback(lengths[-1], lengths[-1] if accepted_whole else 1)
    assert lengths == [4, 8, 16, 16, 16, 4]  # capped at max_tokens; a partial acceptance starts over
    assert len(c.propose([0, 10, 11], n_prompt=1, k_max=2).candidates[0]) == 2  # the decoder's budget still caps
    c.feedback(2, 2)  # a whole draft shorter than the current length (budget-capped) does not grow it
    assert c.length == 8
    with pytest.raises(ConfigError):
        CopyDraft([doc], min_tokens=8, max_tokens=4)
    from rag.speculative import make_drafts

    made = make_drafts("copy", copy_docs=[doc], copy_lengths=(3, 6))
    assert (made.min_tokens, made.max_tokens, made.length) == (3, 6, 3)
