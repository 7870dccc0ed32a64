"""Adaptive-RAG's complexity classifier on synthetic cached outcomes where the cheapest correct mode is a known
function of the question embedding: labels, fit, files, loader and the Controller contract."""
from __future__ import annotations

import numpy as np
import pytest

import rag.control.classifier as classifier_module
from indexers.errors import IndexFormatError
from rag.control.base import Budget
from rag.control.classifier import CLASSES, ClassifierController, load_classifier, save_classifier
from rag.control.features import cheap_features
from rag.control.load import load_controller
from rag.control.train import complexity_labels, train_classifier
from tests.support.controller_conformance import ControllerConformance


def _arm(f1: float, calls: int) -> dict:
    return {"em": float(f1 == 1.0), "f1": f1, "retrieval_calls": calls}


def _synthetic(n=150, seed=0):
    """Class 0 (the model knows), 1 (one retrieval) or 2 (multi-hop), readable from embedding dimension 0."""
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, 3, size=n)
    emb = rng.normal(size=(n, 16))
    emb[:, 0] = np.array([-4.0, 0.0, 4.0])[cls] + rng.normal(scale=0.3, size=n)
    recs = [{"id": f"q{i}", "arms": {"none": _arm(float(c == 0), 0), "one_shot": _arm(float(c <= 1), 1),
                                     "iterative": _arm(1.0, 2), "chain": _arm(0.4, 2)}} for i, c in enumerate(cls)]
    cheap = np.stack([cheap_features(f"What is item {i}?") for i in range(n)])
    return cheap, emb, recs, cls


def test_labels_are_the_cheapest_correct_mode_else_the_best_f1():
    recs = [{"arms": {"none": _arm(1.0, 0), "one_shot": _arm(1.0, 1), "iterative": _arm(1.0, 2), "chain": _arm(1.0, 2)}},
            {"arms": {"none": _arm(0.0, 0), "one_shot": _arm(1.0, 1), "iterative": _arm(1.0, 2), "chain": _arm(0.0, 2)}},
            {"arms": {"none": _arm(0.0, 0), "one_shot": _arm(0.0, 1), "iterative": _arm(0.0, 2), "chain": _arm(1.0, 2)}},
            {"arms": {"none": _arm(0.0, 0), "one_shot": _arm(0.2, 1), "iterative": _arm(0.4, 2), "chain": _arm(0.0, 2)}},
            {"arms": {"none": _arm(0.0, 0), "one_shot": _arm(0.0, 1), "iterative": _arm(0.0, 2), "chain": _arm(0.0, 2)}}]
    assert complexity_labels(recs).tolist() == [0, 1, 2, 2, 0]


def test_the_classifier_learns_the_complexity_and_routes_to_the_paying_multi_mode(tmp_path):
    cheap, emb, recs, cls = _synthetic()
    pol = train_classifier(cheap[:100], emb[:100], recs[:100], pca_dims=4)
    assert pol.multi_mode == "iterative"  # iterative is right on every multi-hop question, chain never
    pred = pol.proba(cheap[100:], emb[100:]).argmax(1)
    assert (pred == cls[100:]).mean() >= 0.9  # chance is 1/3; a sign-flipped fit scores far below
    assert pol.meta["label_counts"] == {c: int((cls[:100] == i).sum()) for i, c in enumerate(CLASSES)}
    save_classifier(pol, tmp_path / "c")
    back = load_classifier(tmp_path / "c")
    np.testing.assert_allclose(back.proba(cheap[100:], emb[100:]), pol.proba(cheap[100:], emb[100:]))
    assert isinstance(load_controller(str(tmp_path / "c"), rag=None), ClassifierController)
    np.save(tmp_path / "c" / "W.npy", np.zeros_like(pol.W))
    with pytest.raises(IndexFormatError, match="checksum"):
        load_classifier(tmp_path / "c")


class TestClassifierController(ControllerConformance):
    @pytest.fixture
    def controller(self, monkeypatch):
        cheap, emb, recs, _ = _synthetic(60)
        pol = train_classifier(cheap, emb, recs, pca_dims=4)
        monkeypatch.setattr(classifier_module, "raw_features", lambda rag, qs: (cheap[:1], emb[:1]))
        return ClassifierController(pol, rag=None)

    @pytest.fixture
    def question(self):
        return "What is item 0?"

    def test_probabilities_are_the_scores_and_the_budget_picks_the_likeliest_fitting(self, controller, question):
        d = controller.choose(question)
        assert set(d.scores) == {"none", "one_shot", "iterative"} and abs(sum(d.scores.values()) - 1) < 1e-9
        assert d.mode == max(d.scores, key=d.scores.get)
        assert controller.choose(question, Budget(retrieval_calls=0)).mode == "none"
