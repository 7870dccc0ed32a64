"""A learned feature reranker (learning to rank): a linear model over cheap features of the first-stage head.

Spec ``ltr:DIR``. Each of the top `depth` hits gets the FEATURES below, computed from the query and the hits
alone (no model, no index: ~3 ms for 20 hits); every feature is z-scored within the query's head (scales differ
between queries and first stages), and the score is their weighted sum. The weights are fit on judged queries
by `adarag reranker train --kind ltr` (softmax cross-entropy over each query's head, the relevant hits as
targets; L2-regularised, convex, solved by L-BFGS in seconds) and published as a folder holding one
checksummed JSON file (indexers.artifact).

Why these features: on multi-hop Wikipedia questions the first stage misses paragraphs whose *title* the
question names (a comparison's second entity) and the bridge paragraph, whose title the other retrieved
paragraphs mention; neither shows in a passage's BM25 or dense score. results/reranker-ltr/README.md has the
held-out table and the per-feature ablation.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexers.artifact import publish, read_artifact_manifest
from indexers.errors import ConfigError, IndexFormatError
from indexers.text import tokenize
from indexers.types import Hit
from retrievers.rerank.base import DEFAULT_DEPTH, RerankerBase, check_depth, check_texts, rerank_hits

__all__ = ["BUNDLED", "FEATURES", "FILE", "FORMAT", "FORMAT_VERSION", "LTRReranker", "features", "fit_weights",
           "labelled_group", "listwise_loss", "load_ltr", "save_ltr", "standardize", "unit_scores"]

FILE = "adarag_ltr.json"
BUNDLED = Path(__file__).resolve().parent / "models" / "ltr-hotpotqa"
"""The weights a bare ``ltr`` spec loads: fit on the 150 train-split queries of ../shared/data/hotpotqa
(`split_queries(seed=0)`, first stage fused = bm25 + dense, RRF). Held out: HotpotQA nDCG@10 0.836 -> 0.896
(150 queries); FanOutQA-leaf, never seen, 0.815 -> 0.887 (540). results/reranker-ltr/README.md."""
FORMAT = "adarag-ltr"
FORMAT_VERSION = 2  # 1: a payload sha256 instead of indexers.artifact's manifest checksum
FEATURES = (
    "first_stage_rrank",  # 1 / (60 + rank) in the first stage's order
    "first_stage_score",  # the first stage's own score
    "title_query_share",  # share of the title's tokens that are query tokens
    "title_in_query",  # the whole title occurs in the query (case-insensitive)
    "title_in_top3",  # the title occurs in the text of another of the top 3 hits (a bridge entity)
    "query_coverage",  # share of the query's tokens present in the title + text
    "title_in_top10",  # the title occurs in the text of another of the top 10 hits
    "log_words",  # log(1 + words in the passage)
)
_MIN_TITLE_CHARS = 3  # shorter titles ("A", "Go") match inside unrelated words


def _mentions(title: str, others: Sequence[str]) -> float:
    return float(len(title) >= _MIN_TITLE_CHARS and any(title in t for t in others))


def features(query: str, hits: Sequence[Hit]) -> np.ndarray:
    """[len(hits), len(FEATURES)] raw features of `hits` (a first-stage ranking, best first) for `query`."""
    q_lower = query.lower()
    q_tok = set(tokenize(query))
    texts = [h.text.lower() for h in hits]
    out = np.zeros((len(hits), len(FEATURES)), dtype=np.float64)
    for i, h in enumerate(hits):
        title = (h.title or "").strip().lower()
        t_tok = set(tokenize(h.title or ""))
        p_tok = set(tokenize(f"{h.title} {h.text}"))
        out[i] = (
            1.0 / (60 + i),
            float(h.score),
            len(t_tok & q_tok) / len(t_tok) if t_tok else 0.0,
            float(len(title) >= _MIN_TITLE_CHARS and title in q_lower),
            _mentions(title, [t for j, t in enumerate(texts[:3]) if j != i]),
            len(q_tok & p_tok) / len(q_tok) if q_tok else 0.0,
            _mentions(title, [t for j, t in enumerate(texts[:10]) if j != i]),
            math.log1p(len(h.text.split())),
        )
    return out


def standardize(x: np.ndarray) -> np.ndarray:
    """Z-score each column within one query's head; a constant column becomes 0."""
    if len(x) == 0:
        return x
    sd = x.std(axis=0)
    return np.where(sd > 0, (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0), 0.0)


def labelled_group(query: str, hits: Sequence[Hit], qrel: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """One training group: the standardised features of `hits` and their labels (1 if the hit's document is
    judged relevant in `qrel`, else 0)."""
    y = np.array([float(qrel.get(h.doc_id, 0) > 0) for h in hits])
    return standardize(features(query, hits)), y


def unit_scores(raw: Sequence[float] | np.ndarray) -> list[float]:
    """Linear model scores mapped into (0, 1) by a logistic (clipped at +-50), as rerankers report them."""
    return [1.0 / (1.0 + math.exp(-min(50.0, max(-50.0, float(s))))) for s in raw]


def listwise_loss(w: np.ndarray, groups: Sequence[tuple[np.ndarray, np.ndarray]], l2: float
                  ) -> tuple[float, np.ndarray]:
    """Mean over groups of -sum_i y_i log softmax(X w)_i / sum(y), plus l2 * |w|^2; and its gradient.

    Each group is (standardised features [n, F], relevance labels [n] >= 0); groups with no relevant hit are
    skipped by the caller (they carry no ranking signal)."""
    loss, grad = 0.0, np.zeros_like(w)
    for x, y in groups:
        s = x @ w
        s = s - s.max()
        p = np.exp(s) / np.exp(s).sum()
        t = y / y.sum()
        loss -= float(t @ (s - math.log(np.exp(s).sum())))
        grad += x.T @ (p - t)
    n = max(1, len(groups))
    return loss / n + l2 * float(w @ w), grad / n + 2 * l2 * w


def fit_weights(groups: Sequence[tuple[np.ndarray, np.ndarray]], l2: float = 0.01) -> np.ndarray:
    """The weights minimising `listwise_loss` (convex for l2 > 0: one optimum, whatever the start)."""
    from scipy.optimize import minimize

    groups = [(x, y.astype(np.float64)) for x, y in groups if y.sum() > 0]
    if not groups:
        raise ConfigError("no training query has a relevant hit in its first-stage head: nothing to learn from "
                          "(check that the qrels' document ids match the index's)")
    res = minimize(listwise_loss, np.zeros(groups[0][0].shape[1]), args=(groups, l2), jac=True, method="L-BFGS-B")
    return np.asarray(res.x, dtype=np.float64)


def _payload_hash(payload: Mapping[str, Any]) -> str:
    """Format 1's checksum: sha256 of the payload's sorted JSON (format 2 uses the artifact manifest's)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


_FIX = "retrain it with `adarag reranker train --kind ltr --index INDEX --qrels QRELS --out DIR`"


def save_ltr(out: str | Path, weights: Sequence[float], *, depth: int, info: Mapping[str, Any] | None = None,
             force: bool = False) -> Path:
    """Publish DIR with one file, DIR/adarag_ltr.json (indexers.artifact: staged, sealed, swapped in): format,
    version, features, weights, depth, `info` and the manifest's checksum, all checked on load."""
    out = Path(out)
    if len(weights) != len(FEATURES):
        raise ValueError(f"{len(weights)} weights for {len(FEATURES)} features")
    if (out / FILE).exists() and not force:
        raise ConfigError(f"{out / FILE} exists: pass --force (force=True) to replace it, or choose another --out")
    with publish(out, FORMAT, FORMAT_VERSION, manifest=FILE) as (_, body):
        body.update({"features": list(FEATURES), "weights": [float(w) for w in weights], "depth": int(depth),
                     "info": dict(info or {})})
    return out / FILE


def load_ltr(path: str | Path) -> dict[str, Any]:
    """The checked payload of DIR (or DIR/adarag_ltr.json): right format and version, features, checksum.
    Format 1 files (one JSON with a payload sha256, before indexers.artifact) still load."""
    p = Path(path).expanduser()
    folder = p if p.is_dir() or not p.name.endswith(".json") else p.parent
    if not (folder / FILE).exists():
        raise ConfigError(f"{folder / FILE} not found: train one with `adarag reranker train --kind ltr --index "
                          "INDEX --qrels QRELS --out DIR` and pass ltr:DIR")
    obj = read_artifact_manifest(folder, FORMAT, (1, FORMAT_VERSION), manifest=FILE, fix=_FIX)
    if obj["version"] == 1:
        digest = obj.pop("sha256", None)
        if digest != _payload_hash(obj):
            raise IndexFormatError(f"{folder / FILE} fails its checksum (edited or truncated); {_FIX}")
    elif "checksum" not in obj:
        raise IndexFormatError(f"{folder / FILE} has no checksum (edited); {_FIX}")
    if obj.get("features") != list(FEATURES) or len(obj.get("weights", [])) != len(FEATURES):
        raise IndexFormatError(f"{folder / FILE} was trained on features {obj.get('features')}, this adarag "
                               f"computes {list(FEATURES)}: retrain it")
    return obj


class LTRReranker(RerankerBase):
    """Re-scores the top `depth` hits with the learned linear model; spec ``ltr:DIR``, or ``ltr`` for BUNDLED."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = BUNDLED if path is None else Path(path).expanduser()
        self.name = "ltr" if path is None else f"ltr:{self.path}"
        self.weights: np.ndarray | None = None
        self.trained_depth: int | None = None

    def warm_up(self) -> None:
        if self.weights is None:
            obj = load_ltr(self.path)
            self.weights = np.asarray(obj["weights"], dtype=np.float64)
            self.trained_depth = int(obj["depth"])

    def score_hits(self, query: str, hits: Sequence[Hit]) -> list[float]:
        """Model scores of `hits` (a first-stage ranking, best first)."""
        self.warm_up()
        assert self.weights is not None
        return (standardize(features(query, hits)) @ self.weights).tolist() if hits else []

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Texts alone have no first-stage order or titles: scored as untitled hits in the given order, mapped
        into (0, 1) as `rerank` maps them (the Reranker contract; `score_hits` gives the raw linear scores)."""
        texts = check_texts(query, texts)
        return unit_scores(self.score_hits(query, [Hit(id=str(i), score=0.0, text=t) for i, t in enumerate(texts)]))

    def rerank(self, query: str, hits: Sequence[Hit], depth: int = DEFAULT_DEPTH) -> list[Hit]:
        """The top `depth` hits re-scored (features need the hits, not just their texts) and sorted, scores in
        (0, 1) (`unit_scores`), the rest after."""
        depth = check_depth(depth)
        check_texts(query, [])
        return rerank_hits(hits, unit_scores(self.score_hits(query, list(hits[:depth]))), depth)

