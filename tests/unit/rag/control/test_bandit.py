"""Bandit controller on synthetic cached outcomes where the best arm is a known function of the context."""
from __future__ import annotations

import numpy as np
import pytest

from indexers.errors import ConfigError, IndexFormatError
from tests.support.controller_conformance import ControllerConformance
from rag.control.bandit import BanditController, ips_value, load_policy, save_policy
from rag.control.base import correct, reward
from rag.control.features import cheap_features
from rag.control.train import cross_validate, train_bandit

ARMS = ("none", "one_shot", "iterative", "chain")


def _synthetic(n=120, seed=0):
    """Questions whose embedding sign says whether the model knows the answer (none correct) or needs one_shot."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, 16))
    knows = rng.random(n) < 0.5
    emb[:, 0] = np.where(knows, 4.0, -4.0) + rng.normal(scale=0.3, size=n)  # a direction PCA keeps
    recs = []
    for i in range(n):
        arms = {"none": {"em": float(knows[i]), "f1": float(knows[i]), "retrieval_calls": 0},
                "one_shot": {"em": 1.0, "f1": 1.0, "retrieval_calls": 1},
                "iterative": {"em": 1.0, "f1": 1.0, "retrieval_calls": 3},
                "chain": {"em": 0.0, "f1": 0.0, "retrieval_calls": 3}}
        recs.append({"id": f"q{i}", "arms": arms})
    cheap = np.stack([cheap_features(f"What is item {i}?") for i in range(n)])
    return cheap, emb, recs, knows


def test_reward_follows_mba_rag():
    assert reward(True, 0) == 1.0 and reward(True, 1) == pytest.approx(0.9) and reward(False, 0) == -1.0
    assert reward(True, 2, lam=0.2) == pytest.approx(0.6)
    assert correct(0.0, 0.6) and not correct(0.0, 0.4) and correct(1.0, 0.0)


@pytest.mark.parametrize("feedback", ["full", "bandit"])
@pytest.mark.parametrize("kind", ["linucb", "thompson"])
def test_replay_learns_the_cheapest_correct_arm(kind, feedback):
    cheap, emb, recs, knows = _synthetic()
    pol, log = train_bandit(cheap[:80], emb[:80], recs[:80], kind=kind, epochs=8, pca_dims=4, lam=0.3,
                            feedback=feedback)
    X = pol.context(cheap[80:], emb[80:])
    picks = np.array([pol.arms[int(np.argmax(pol.scores(x, explore=False)))] for x in X])
    want = np.where(knows[80:], "none", "one_shot")
    assert (picks == want).mean() >= 0.8  # an untrained or sign-flipped policy scores about 0.5 or less
    assert len(log) == (8 if feedback == "bandit" else 1) * 80 and {e["arm"] for e in log} <= set(ARMS)


def test_ips_matches_the_exact_value_under_uniform_logging():
    rng = np.random.default_rng(1)
    R = rng.uniform(-1, 1, size=(20000, 4))
    target = rng.integers(0, 4, size=20000)
    logged = rng.integers(0, 4, size=20000)
    est = ips_value(target, logged, np.full(20000, 0.25), R[np.arange(20000), logged])
    assert est == pytest.approx(R[np.arange(20000), target].mean(), abs=0.03)
    with pytest.raises(ConfigError, match="propensities"):
        ips_value([0], [0], [0.0], [1.0])


def test_thompson_propensity_is_a_probability_and_linucb_is_deterministic():
    cheap, emb, recs, _ = _synthetic(40)
    pol, _ = train_bandit(cheap, emb, recs, kind="thompson", epochs=2, pca_dims=2)
    x = pol.context(cheap[:1], emb[:1])[0]
    ps = [pol.propensity(x, a, explore=True, draws=100) for a in range(4)]
    assert all(0 < p <= 1 for p in ps) and sum(ps) == pytest.approx(1.0, abs=0.05)
    draws = {int(np.argmax(pol.scores(x, explore=True, rng=np.random.default_rng(s)))) for s in range(30)}
    assert len(draws) > 1  # Thompson explores: posterior draws disagree on the best arm

    ucb, _ = train_bandit(cheap, emb, recs, kind="linucb", epochs=2, pca_dims=2)
    x = ucb.context(cheap[:1], emb[:1])[0]
    s1, s2 = ucb.scores(x, explore=True), ucb.scores(x, explore=True)
    assert np.array_equal(s1, s2) and np.all(s1 > ucb.scores(x, explore=False))  # the same UCB, above the mean
    best = int(np.argmax(s1))
    assert [ucb.propensity(x, a, explore=True) for a in range(4)] == [float(a == best) for a in range(4)]


def test_policy_round_trips_and_detects_tampering(tmp_path):
    cheap, emb, recs, _ = _synthetic(30)
    pol, _ = train_bandit(cheap, emb, recs, epochs=1, pca_dims=2)
    save_policy(pol, tmp_path / "p", meta={"n_train": 30})
    back = load_policy(tmp_path / "p")
    x = pol.context(cheap[:3], emb[:3])
    assert np.allclose([pol.scores(r, explore=False) for r in x], [back.scores(r, explore=False) for r in x])
    np.save(tmp_path / "p" / "b.npy", np.zeros_like(pol.b))
    with pytest.raises(IndexFormatError, match="checksum"):
        load_policy(tmp_path / "p")
    with pytest.raises(IndexFormatError, match="controller train"):
        load_policy(tmp_path / "nope")


def test_online_update_moves_the_chosen_arm(monkeypatch):
    cheap, emb, recs, _ = _synthetic(30)
    pol, _ = train_bandit(cheap, emb, recs, epochs=1, pca_dims=2)
    ctl = BanditController(pol, rag=None)
    monkeypatch.setattr(ctl, "_x", lambda q: pol.context(cheap[:1], emb[:1])[0])
    before = dict(ctl.choose("q").scores)
    for _ in range(20):
        ctl.update("q", "chain", 1.0)
    after = ctl.choose("q").scores
    assert after["chain"] > before["chain"]
    assert all(after[m] == before[m] for m in before if m != "chain")  # only the chosen arm learns
    with pytest.raises(ConfigError, match="unknown mode"):
        ctl.update("q", "bogus", 1.0)


def test_shipped_default_policy_loads_and_specs_resolve():
    from rag.control.load import DEFAULT_POLICY, load_controller
    from rag.modes import MODE_NAMES

    pol = load_policy(DEFAULT_POLICY)  # checksums verified
    assert pol.arms == MODE_NAMES and pol.kind in ("linucb", "thompson")
    assert pol.A.shape[0] == 4 and pol.A.shape[1] == pol.A.shape[2] == pol.b.shape[1]
    assert load_controller("iterative", rag=None).choose("anything").mode == "iterative"
    with pytest.raises(ConfigError, match="bandit, a mode"):
        load_controller("smart", rag=None)


def test_full_feedback_learns_each_arms_mean():
    """No context signal, mostly negative rewards: the arm with the best mean must win for (nearly) every question
    (bandit-feedback replay settles on iterative here: each arm saw only the questions it was tried on)."""
    rng = np.random.default_rng(3)
    n = 60
    emb = rng.normal(size=(n, 16))
    cheap = np.stack([cheap_features(f"What is item {i}?") for i in range(n)])
    p_right = {"none": 0.05, "one_shot": 0.35, "iterative": 0.25, "chain": 0.2}
    recs = []
    for i in range(n):
        arms = {}
        for a, p in p_right.items():
            ok = float(rng.random() < p)
            arms[a] = {"em": ok, "f1": ok, "retrieval_calls": {"none": 0, "one_shot": 1}.get(a, 2)}
        recs.append({"id": f"q{i}", "arms": arms})
    R = np.array([[reward(bool(r["arms"][a]["em"]), r["arms"][a]["retrieval_calls"]) for a in ARMS] for r in recs])
    best = ARMS[int(np.argmax(R.mean(0)))]
    pol, log = train_bandit(cheap, emb, recs, pca_dims=0, feedback="full")
    X = pol.context(cheap, emb)
    picks = [pol.arms[int(np.argmax(pol.scores(x, explore=False)))] for x in X]
    assert picks.count(best) >= 0.9 * n and len(log) == n
    # each arm's bias is (close to) its mean reward: the ridge prior is one pseudo-observation among n
    theta = [np.linalg.solve(pol.A[a], pol.b[a])[0] for a in range(4)]
    assert np.allclose(theta, R.mean(0) * n / (n + 1), atol=0.05)
    with pytest.raises(ConfigError, match="feedback"):
        train_bandit(cheap, emb, recs, feedback="partial")


def test_cross_validation_prefers_the_parameters_that_keep_the_signal():
    """The signal lives in the embedding: PCA 0 drops it (then one_shot everywhere is the best guess)."""
    cheap, emb, recs, knows = _synthetic(n=80)
    grid = [{"pca_dims": 0}, {"pca_dims": 4, "ridge": 1.0}]
    rows = cross_validate(cheap, emb, recs, grid, folds=4, lam=0.3)
    assert rows[0]["params"] == {"pca_dims": 4, "ridge": 1.0} and len(rows) == 2
    # the right arm on ~every question: none where known (reward 1), one_shot elsewhere (0.7)
    assert rows[0]["reward"] == pytest.approx(knows.mean() * 1.0 + (1 - knows.mean()) * 0.7, abs=0.05)
    assert rows[0]["em"] >= 0.95 and rows[1]["reward"] == pytest.approx(0.7)  # one_shot: 1 - 0.3
    with pytest.raises(ConfigError, match="folds"):
        cross_validate(cheap, emb, recs, grid, folds=1)
    with pytest.raises(ConfigError, match="repeats"):
        cross_validate(cheap, emb, recs, grid, repeats=0)
    with pytest.raises(ConfigError, match="grid is empty"):
        cross_validate(cheap, emb, recs, [])


class TestFixedModeController(ControllerConformance):
    @pytest.fixture
    def controller(self):
        return BanditController(None, rag=None, fixed="iterative")

    @pytest.fixture
    def question(self):
        return "Who wrote the Iliad?"

    def test_the_fixed_mode_is_chosen_with_certainty(self, controller):
        assert controller.choose("anything").mode == "iterative" and controller.choose("x").propensity == 1.0


class TestBanditController(ControllerConformance):
    @pytest.fixture
    def controller(self, monkeypatch):
        cheap, emb, recs, _ = _synthetic(30)
        pol, _ = train_bandit(cheap, emb, recs, epochs=1, pca_dims=2)
        ctl = BanditController(pol, rag=None)
        monkeypatch.setattr(ctl, "_x", lambda q: pol.context(cheap[:1], emb[:1])[0])
        return ctl

    @pytest.fixture
    def question(self):
        return "What is item 0?"

    def test_its_reward_cost_is_the_policy_s(self, controller):
        assert controller.lam == controller.policy.lam
