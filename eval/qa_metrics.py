"""QA metrics: SQuAD-normalised EM/F1, alias accuracy, KILT R-precision, support recall@k, KILT-EM/F1.

Normalisation and EM/F1 follow the official SQuAD v2.0 script (lower-case, drop ASCII punctuation, drop the
articles a/an/the, collapse whitespace; F1 is 1 when both sides normalise to nothing, else 0 if either does).
Per-set conventions: aliases are the answers list (TriviaQA, NQ, SQuAD); a yes/no question (every gold is yes
or no: HotpotQA, 2Wiki comparisons) scores a prediction by its leading yes or no.
R-precision follows KILT: the retrieved page/passage ids are de-duplicated in rank order, R = |gold|, and the
score is |top-R ∩ gold| / R. KILT-EM/F1 give answer credit only when page-level R-precision is 1.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from indexers.ingest import doc_id_of

__all__ = [
    "HitLike",
    "QAScores",
    "aggregate",
    "answer_accuracy",
    "exact_match",
    "f1_score",
    "normalize_answer",
    "yes_no_view",
    "r_precision",
    "recall_at_k",
    "score_example",
]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """SQuAD normalisation. Only ASCII punctuation is removed (as in the official script); unicode letters stay."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _golds(golds: Sequence[str] | str) -> list[str]:
    if isinstance(golds, str):
        return [golds]
    return list(golds)


_YES_NO = frozenset({"yes", "no"})


def yes_no_view(prediction: str, golds: Sequence[str] | str) -> str:
    """The prediction as a yes/no question is scored: when every gold is "yes" or "no" (HotpotQA and 2Wiki
    comparisons), "Yes, both are American." counts as its leading "yes"; otherwise the prediction as is."""
    gs = [normalize_answer(g) for g in _golds(golds)]
    words = normalize_answer(prediction).split()
    if gs and all(g in _YES_NO for g in gs) and words and words[0] in _YES_NO:
        return words[0]
    return prediction


def exact_match(prediction: str, golds: Sequence[str] | str) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer (yes/no questions: its leading yes or
    no, `yes_no_view`); 0.0 with no golds."""
    p = normalize_answer(yes_no_view(prediction, golds))
    return float(any(p == normalize_answer(g) for g in _golds(golds)))


def _f1(prediction: str, gold: str) -> float:
    p, g = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not p or not g:
        return float(p == g)
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, golds: Sequence[str] | str) -> float:
    """Token-level F1 of the normalised strings, max over the gold answers (yes/no questions: `yes_no_view`);
    0.0 with no golds."""
    prediction = yes_no_view(prediction, golds)
    return max((_f1(prediction, g) for g in _golds(golds)), default=0.0)


def answer_accuracy(prediction: str, golds: Sequence[str] | str) -> float:
    """1.0 if any gold answer (an alias) occurs in the prediction as a whole-token span, after normalisation.

    Whole tokens, so gold "1" is not found in "1990"; an empty normalised gold never counts.
    """
    p = f" {normalize_answer(prediction)} "
    for g in _golds(golds):
        ng = normalize_answer(g)
        if ng and f" {ng} " in p:
            return 1.0
    return 0.0


def _dedup(ids: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for i in ids:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def r_precision(retrieved: Sequence[str], gold: Collection[str]) -> float:
    """KILT R-precision: of the first R distinct retrieved ids (R = number of gold ids), the share that is gold.

    Raises ValueError with no gold ids: such a question has no provenance and must be left out of the mean.
    """
    gold = set(gold)
    if not gold:
        raise ValueError("r_precision needs at least one gold id; leave questions without provenance out")
    top = _dedup(retrieved)[: len(gold)]
    return sum(1 for i in top if i in gold) / len(gold)


def recall_at_k(retrieved: Sequence[str], gold: Collection[str], k: int) -> float:
    """Share of the gold ids found among the first k distinct retrieved ids."""
    gold = set(gold)
    if not gold:
        raise ValueError("recall_at_k needs at least one gold id; leave questions without provenance out")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return len(set(_dedup(retrieved)[:k]) & gold) / len(gold)


class HitLike(Protocol):
    id: str
    doc_id: str
    title: str


def _keys(hits: Sequence[Any], gold: Collection[str], by_page: bool) -> list[str]:
    """One comparable id per hit: the gold id it matches (passage id, its document id, or for pages its title),
    else its document id. Lets gold ids be passage ids, document ids or page titles without a lookup table."""
    gold = set(gold)
    out = []
    for h in hits:
        hid = h["id"] if isinstance(h, dict) else h.id
        doc = (h.get("doc_id") if isinstance(h, dict) else getattr(h, "doc_id", "")) or doc_id_of(hid)
        title = (h.get("title") if isinstance(h, dict) else getattr(h, "title", "")) or ""
        candidates = (doc, title, hid) if by_page else (hid, doc)
        out.append(next((c for c in candidates if c in gold), doc))
    return out


@dataclass(frozen=True)
class QAScores:
    """Per-question scores. Provenance metrics are None when the question has no gold provenance."""

    em: float
    f1: float
    accuracy: float
    r_precision: float | None  # page level
    r_precision_passage: float | None
    support_recall: float | None  # recall@k of supporting passages
    kilt_em: float | None
    kilt_f1: float | None

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)


def score_example(prediction: str, answers: Sequence[str], hits: Sequence[Any], *,
                  supporting_ids: Collection[str] = (), provenance_pages: Collection[str] = (),
                  k: int | None = None) -> QAScores:
    """Score one answer and its retrieved passages (Hit objects or dicts with id/doc_id/title, best first).

    Page-level gold is `provenance_pages`, or the supporting ids when no pages are given (a corpus with one
    document per paragraph, like the shared HotpotQA one). `k` defaults to the number of hits.
    """
    em, f1 = exact_match(prediction, answers), f1_score(prediction, answers)
    acc = answer_accuracy(prediction, answers)
    pages = provenance_pages or supporting_ids
    rp = rpp = rec = kem = kf1 = None
    if pages:
        rp = r_precision(_keys(hits, pages, by_page=True), pages)
        kem, kf1 = (em, f1) if rp == 1.0 else (0.0, 0.0)
    if supporting_ids:
        keys = _keys(hits, supporting_ids, by_page=False)
        rpp = r_precision(keys, supporting_ids)
        rec = recall_at_k(keys, supporting_ids, k or max(len(hits), 1))
    return QAScores(em, f1, acc, rp, rpp, rec, kem, kf1)


def _mean(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return sum(vals) / len(vals) if vals else None


def aggregate(scores: Sequence[QAScores]) -> dict[str, float | None]:
    """Means over questions; a provenance metric averages only the questions that have provenance."""
    return {name: _mean([getattr(s, name) for s in scores]) for name in QAScores.__dataclass_fields__}
