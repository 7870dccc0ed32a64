"""Self-supervised reranker training data from the user's own corpus: Inverse Cloze Task groups and a listwise loss.

ICT (Lee et al. 2019, "Latent Retrieval for Weakly Supervised Open Domain QA"): one sentence of a passage is the
pseudo-query, the passage without that sentence is its positive, and the first stage's top passages of *other*
documents for that sentence are the hard negatives. A group (query, positive, negatives) is trained listwise:
softmax cross-entropy with the positive as the target class (as in ColBERT/RocketQA-style cross-encoder training),
which compares passages of the same query instead of fitting an absolute label prior as pointwise BCE does.
"""
from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from indexers.errors import ConfigError
from indexers.index import Index
from indexers.ingest import doc_id_of
from indexers.types import Hit, passage_text
from retrievers.rerank.base import hit_text
from retrievers.search import Retriever

__all__ = ["Group", "ict_example", "ict_groups", "listwise_loss", "qrels_groups", "split_sentences"]

_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[A-Z0-9\"'(\[])")
MIN_QUERY_WORDS, MAX_QUERY_WORDS = 5, 30
"""Pseudo-query length in words: shorter sentences ("He died.") say too little to find their passage; longer ones
read unlike users' questions and would crowd the passage out of the (query, passage) token budget."""


@dataclass(frozen=True)
class Group:
    """One listwise example: a query, its positive passage and its negatives (the positive is class 0)."""

    qid: str
    query: str
    positive: str
    negatives: tuple[str, ...]
    kind: str  # ict | qrels


def split_sentences(text: str) -> list[str]:
    """Sentences of `text` split after . ! ? before a capital, digit or quote (no abbreviation list: a few
    wrong splits only make some pseudo-queries shorter)."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def ict_example(title: str, text: str, rng: random.Random) -> tuple[str, str] | None:
    """(pseudo-query, positive) for one passage: a random sentence of MIN_QUERY_WORDS..MAX_QUERY_WORDS words, and
    the title plus the other sentences; None when the passage has fewer than 2 sentences or no such sentence."""
    sentences = split_sentences(text)
    if len(sentences) < 2:
        return None
    pick = [i for i, s in enumerate(sentences) if MIN_QUERY_WORDS <= len(s.split()) <= MAX_QUERY_WORDS]
    if not pick:
        return None
    i = rng.choice(pick)
    rest = " ".join(sentences[:i] + sentences[i + 1:])
    return sentences[i], passage_text(title, rest)


def ict_groups(index: Index, n_queries: int, negatives: int = 7, *, first_stage: str = "bm25", depth: int = 30,
               seed: int = 0, threads: int | None = None, exclude_docs: Sequence[str] = ()) -> list[Group]:
    """Up to `n_queries` ICT groups from passages sampled without replacement; hard negatives are the first
    stage's top hits for the pseudo-query from other documents (never the source document), topped up with
    random passages when fewer come back. `exclude_docs` keeps e.g. held-out queries' relevant documents out."""
    if not isinstance(n_queries, int) or n_queries < 1 or not isinstance(negatives, int) or negatives < 1:
        raise ConfigError(f"n_queries and negatives must be positive ints, got {n_queries!r}, {negatives!r}")
    live = index.live_rows().tolist()  # deleted rows (an index with deletes) are never sampled
    n = len(live)
    if n < negatives + 1:
        raise ConfigError(f"index {index.root} holds {n} passages; ICT with {negatives} negatives needs "
                          f"at least {negatives + 1}: lower --negatives or index more documents")
    retriever = Retriever(index, threads=threads)
    retriever.stores_of(first_stage)  # a store the index lacks -> ConfigError naming the rebuild
    rng = random.Random(seed)
    excluded = set(exclude_docs)
    ids = [str(x) for x in index.ids.tolist()]
    examples: list[tuple[str, str, str]] = []  # (source doc id, query, positive)
    for row in rng.sample(live, n):
        if len(examples) >= n_queries:
            break
        if doc_id_of(ids[row]) in excluded:
            continue
        hit = index.hits([row], [0.0])[0]
        made = ict_example(hit.title, hit.text, rng)
        if made is not None:
            examples.append((hit.doc_id, *made))
    groups: list[Group] = []
    for start in range(0, len(examples), 64):
        batch = examples[start:start + 64]
        ranked = retriever.rows_batch([q for _, q, _ in batch], first_stage, depth)
        for (doc, query, positive), (rows, _) in zip(batch, ranked):
            negs = _negatives(index, ids, live, rows.tolist(), {doc} | excluded, negatives, rng)
            groups.append(Group(f"ict:{doc}:{len(groups)}", query, positive, negs, "ict"))
    return groups


def _negatives(index: Index, ids: list[str], live: list[int], ranked_rows: list[int], banned: set[str], k: int,
               rng: random.Random) -> tuple[str, ...]:
    """k passages from `ranked_rows` (in order) then random live rows, none from a document in `banned`, one
    per doc."""
    seen = set(banned)
    rows: list[int] = []
    for r in ranked_rows + rng.sample(live, min(len(live), 8 * k)):
        d = doc_id_of(ids[r])
        if d not in seen:
            seen.add(d)
            rows.append(r)
            if len(rows) == k:
                break
    return tuple(hit_text(h) for h in index.hits(rows, [0.0] * len(rows)))


def qrels_groups(candidates: Mapping[str, Sequence[Hit]], queries: Mapping[str, str],
                 qrels: Mapping[str, Mapping[str, int]], qids: Sequence[str], negatives: int = 7,
                 seed: int = 0) -> list[Group]:
    """One group per (query, relevant document in its candidates): that document's best passage against the
    query's top non-relevant candidates (the first stage's hard negatives)."""
    rng = random.Random(seed)
    groups: list[Group] = []
    for q in qids:
        hits = list(candidates.get(q, ()))
        relevant = {d for d, g in qrels.get(q, {}).items() if g > 0}
        negs = tuple(hit_text(h) for h in hits if h.doc_id not in relevant)[:negatives]
        if not negs:
            continue
        for doc in sorted(relevant):
            best = next((h for h in hits if h.doc_id == doc), None)
            if best is not None:
                groups.append(Group(q, queries[q], hit_text(best), negs, "qrels"))
    rng.shuffle(groups)
    return groups


def listwise_loss(logits: Any) -> Any:
    """Softmax cross-entropy over each row of `logits` [g, 1 + n] with column 0 (the positive) as the target."""
    import torch

    if logits.dim() != 2 or logits.shape[1] < 2:
        raise ConfigError(f"listwise_loss needs logits [groups, 1 + negatives], got shape {tuple(logits.shape)}")
    return torch.nn.functional.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long,
                                                                  device=logits.device))
