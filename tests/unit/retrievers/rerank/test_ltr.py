"""retrievers.rerank.ltr: each feature on hand-built hits, the loss gradient against finite differences, the fit
recovering a planted weight vector, the checksummed file (round trip, tamper, old version, overwrite), the
bundled weights moving a passage the question names up, and `train_ltr` / `adarag reranker train --kind ltr`
on real HotpotQA paragraphs."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from indexers.errors import ConfigError, IndexFormatError
from indexers.types import Hit
from retrievers.rerank.ltr import (
    BUNDLED,
    FEATURES,
    FILE,
    LTRReranker,
    features,
    fit_weights,
    listwise_loss,
    load_ltr,
    save_ltr,
    standardize,
)
from retrievers.rerank import Reranker, load_reranker


def _hit(i: int, title: str, text: str, score: float = 1.0) -> Hit:
    return Hit(id=f"p{i}", score=score, doc_id=f"d{i}", title=title, text=text)


def test_features_by_hand() -> None:
    hits = [_hit(0, "Kiss and Tell", "A 1945 film starring Shirley Temple as Corliss Archer.", 3.0),
            _hit(1, "Shirley Temple", "An American actress and diplomat.", 2.0),
            _hit(2, "Go", "Short title that must not match inside words like Google.", 1.0)]
    x = features("Which diplomat starred in Kiss and Tell?", hits)
    assert x.shape == (3, len(FEATURES))
    col = {name: x[:, j] for j, name in enumerate(FEATURES)}
    assert col["first_stage_rrank"].tolist() == [1 / 60, 1 / 61, 1 / 62]
    assert col["first_stage_score"].tolist() == [3.0, 2.0, 1.0]
    assert col["title_in_query"].tolist() == [1.0, 0.0, 0.0]
    # the bridge: hit 0's text names hit 1's title; a 2-character title never counts as mentioned
    assert col["title_in_top3"].tolist() == [0.0, 1.0, 0.0]
    assert col["title_in_top10"].tolist() == [0.0, 1.0, 0.0]
    assert col["title_query_share"][0] == 1.0 and col["title_query_share"][1] == 0.0
    assert 0.0 < col["query_coverage"][1] < col["query_coverage"][0] <= 1.0
    assert col["log_words"][1] == pytest.approx(math.log1p(5))  # five words


def test_a_hit_never_mentions_itself() -> None:
    x = features("q", [_hit(0, "Paris", "Paris is the capital."), _hit(1, "Lyon", "A city.")])
    assert x[0, FEATURES.index("title_in_top3")] == 0.0


def test_standardize() -> None:
    x = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 4.0], [5.0, 5.0, 9.0]])
    z = standardize(x)
    assert np.allclose(z.mean(0), 0) and np.allclose(z[:, [0, 2]].std(0), 1) and np.all(z[:, 1] == 0)
    assert standardize(np.zeros((0, 3))).shape == (0, 3)


def _planted(seed: int, w: np.ndarray, n_groups: int = 400, n: int = 12) -> list[tuple[np.ndarray, np.ndarray]]:
    """Groups whose one relevant item is drawn from softmax(X w): the maximum-likelihood fit should find w."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_groups):
        x = rng.normal(size=(n, len(w)))
        p = np.exp(x @ w) / np.exp(x @ w).sum()
        y = np.zeros(n)
        y[rng.choice(n, p=p)] = 1.0
        out.append((x, y))
    return out


def test_loss_gradient_matches_finite_differences() -> None:
    groups = _planted(0, np.array([1.0, -0.5, 0.2]), n_groups=5)
    w = np.array([0.3, 0.1, -0.2])
    _, g = listwise_loss(w, groups, 0.05)
    eps = 1e-6
    num = [(listwise_loss(w + eps * e, groups, 0.05)[0] - listwise_loss(w - eps * e, groups, 0.05)[0]) / (2 * eps)
           for e in np.eye(3)]
    assert np.allclose(g, num, atol=1e-6)


def test_fit_recovers_a_planted_weight_vector() -> None:
    true = np.array([1.5, -1.0, 0.0, 0.5])
    w = fit_weights(_planted(1, true), l2=1e-4)
    assert np.dot(w, true) / (np.linalg.norm(w) * np.linalg.norm(true)) > 0.95
    assert w[1] < 0 < w[0]


def test_fit_without_any_relevant_hit_says_so() -> None:
    with pytest.raises(ConfigError, match="no training query has a relevant hit"):
        fit_weights([(np.ones((3, 2)), np.zeros(3))])


def test_file_round_trip_and_integrity(tmp_path) -> None:
    w = [0.1 * i for i in range(len(FEATURES))]
    path = save_ltr(tmp_path / "m", w, depth=15, info={"note": "x"})
    assert load_ltr(tmp_path / "m")["weights"] == w and load_ltr(path)["depth"] == 15
    assert [p.name for p in (tmp_path / "m").iterdir()] == [FILE]  # no temp file left behind
    with pytest.raises(ConfigError, match="exists"):
        save_ltr(tmp_path / "m", w, depth=15)
    save_ltr(tmp_path / "m", w[::-1], depth=15, force=True)
    assert load_ltr(path)["weights"] == w[::-1]
    obj = json.loads(path.read_text())
    obj["weights"][0] += 1.0
    path.write_text(json.dumps(obj))
    with pytest.raises(IndexFormatError, match="checksum"):
        load_ltr(path)
    obj["version"] = 99
    path.write_text(json.dumps(obj))
    with pytest.raises(IndexFormatError, match="version"):
        load_ltr(path)
    path.write_text("{not json")
    with pytest.raises(IndexFormatError, match="unreadable"):
        load_ltr(path)
    with pytest.raises(ConfigError, match="reranker train --kind ltr"):
        load_ltr(tmp_path / "absent")
    with pytest.raises(ValueError):
        save_ltr(tmp_path / "n", [1.0], depth=5)


def test_bundled_weights_lift_the_passage_the_question_names() -> None:
    """A wrong or sign-flipped model would leave 'Shirley Temple' where the first stage put it (5th)."""
    r = load_reranker("ltr")
    assert isinstance(r, LTRReranker) and isinstance(r, Reranker) and r.path == BUNDLED and r.name == "ltr"
    hits = [_hit(i, f"Film {i}", f"Film {i} is a 1940s comedy film about a teenage girl.", 1.0 / (60 + i))
            for i in range(4)]
    hits.append(_hit(4, "Shirley Temple", "Shirley Temple was an American actress and later a diplomat.",
                     1 / 64))
    hits += [_hit(i, f"Other {i}", "Unrelated text about rivers.", 1.0 / (60 + i)) for i in range(5, 25)]
    out = r.rerank("Which diplomat was the actress Shirley Temple?", hits, depth=20)
    assert out[0].id == "p4"
    assert [h.id for h in out[20:]] == [h.id for h in hits[20:]]  # below the depth: first-stage order
    assert all(0 < h.score <= 1 for h in out) and [h.score for h in out] == sorted((h.score for h in out),
                                                                                   reverse=True)
    assert r.rerank("Who?", [], depth=5) == []
    assert len(r.score("who is Shirley Temple", ["a", "Shirley Temple"])) == 2
    with pytest.raises(ConfigError):
        r.rerank("Who?", hits, depth=0)


def test_spec_with_a_directory(tmp_path) -> None:
    save_ltr(tmp_path / "m", [0.0] * len(FEATURES), depth=20)
    r = load_reranker(f"ltr:{tmp_path / 'm'}")
    assert r.name == f"ltr:{tmp_path / 'm'}"
    r.warm_up()
    assert r.trained_depth == 20


# ----------------------------------------------------------------------------- training on real paragraphs


def test_a_format_1_file_still_loads_and_is_still_checked(tmp_path) -> None:
    """LTR files written before indexers.artifact (one JSON with a payload sha256) load unchanged."""
    import hashlib

    payload = {"format": "adarag-ltr", "version": 1, "features": list(FEATURES),
               "weights": [0.5] * len(FEATURES), "depth": 20, "info": {}}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / FILE).write_text(json.dumps({**payload, "sha256": digest}))
    assert load_ltr(tmp_path / "old")["weights"] == [0.5] * len(FEATURES)
    (tmp_path / "old" / FILE).write_text(json.dumps({**payload, "depth": 5, "sha256": digest}))
    with pytest.raises(IndexFormatError, match="checksum"):
        load_ltr(tmp_path / "old")
