"""The reference for exactness tests: plain greedy decoding by transformers' own `generate` (no adarag code)."""
from __future__ import annotations

from rag.generator import Generator

# Two grounded passages the exactness tests quote from (the copy draft's source).
PASSAGES = [
    ("p1", "Zorvath Bridge", "The Zorvath Bridge over the Kelmi river was completed in 1927 by Anna Brandt, a civil "
                             "engineer from Hamburg who also designed the Kelmi dam and the Ostend lighthouse."),
    ("p2", "Great Barrier Reef", "The Great Barrier Reef is the world's largest coral reef system, composed of over "
                                 "2,900 individual reefs off the coast of Queensland, Australia."),
]


def plain_ids(gen: Generator, messages, max_new_tokens: int) -> list[int]:
    """Greedy token ids of `gen`'s model for `messages`, up to the first stop token (excluded)."""
    import torch

    ids = gen.encode(messages)
    with torch.inference_mode():
        out = gen.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, temperature=None, top_p=None, top_k=None,
                                 eos_token_id=list(gen.stop_token_ids), pad_token_id=gen.stop_token_ids[0])
    new = out[0, ids.shape[1]:].tolist()
    stops = set(gen.stop_token_ids)
    return next((new[:i] for i, t in enumerate(new) if t in stops), new)
