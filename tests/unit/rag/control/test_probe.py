"""The Probing-RAG controller: hidden states of a real tiny LM, the logistic head on synthetic signals, layer
selection, threshold calibration by its definition, the policy file, and the iterative stop hook."""
from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

from indexers.errors import ConfigError, IndexFormatError
from indexers.types import Hit
from rag.control.bandit import load_policy
from rag.control.load import DEFAULT_PROBE, load_controller
from rag.control.probe import NEVER, ProbeController, ProbeHead, ProbePolicy, load_probe, save_probe
from rag.control.train import auc, calibrate_threshold, calibration_part, fit_head, select_head, train_probe
from rag.modes import ModeContext, run_mode
from tests.support.controller_conformance import ControllerConformance


# ---------------------------------------------------------------- hidden states (real model)


class _FeatureGen:
    """A stand-in LM whose layer 2 encodes "the question mentions a capital" (dim 0) and whose other layers are
    noise; drafts "ok" read as right on dim 1."""

    name, model = "stub", SimpleNamespace(config=SimpleNamespace(num_hidden_layers=4, hidden_size=8))

    def pooled_states(self, prompts, layers, *, pools=("last",), batch_size=8):
        rng = np.random.default_rng(len(prompts))
        out = {}
        for p in pools:
            H = rng.normal(size=(len(layers), len(prompts), 8))
            for j, layer in enumerate(layers):
                if layer == 2 and p == "mean":
                    for i, m in enumerate(prompts):
                        H[j, i, 0] += 6.0 * ("capital" in m[3]["content"])
                        H[j, i, 1] += 6.0 * (m[-2]["content"] == "ok" if len(m) > 4 else 0.0)
            out[p] = H
        return out

    def hidden_states(self, prompts, layers, *, pool="last", batch_size=8):
        return self.pooled_states(prompts, layers, pools=(pool,))[pool]


def _records(n_caps: int, n_other: int):
    def rec(i, q, none_ok):
        ok = {"none": none_ok, "one_shot": True, "iterative": False, "chain": False}
        arms = {a: {"prediction": "ok" if ok[a] else "bad", "em": float(ok[a]), "f1": 0.0,
                    "retrieval_calls": {"none": 0, "one_shot": 1, "iterative": 2, "chain": 2}[a]} for a in ok}
        return {"id": f"q{i}", "question": q, "answers": ["a"], "split": "train", "arms": arms}

    return ([rec(i, f"What is the capital of country {i}?", True) for i in range(n_caps)]
            + [rec(100 + i, f"Who married the grandson of person {i}?", False) for i in range(n_other)])


def test_train_probe_picks_the_informative_layer_and_calibrates():
    recs = _records(8, 30)  # rare positives, as with the real `none` arm
    pol = train_probe(recs, _FeatureGen(), seed=0)
    assert (pol.head.layer, pol.head.pool) == (2, "mean") and pol.meta["layers"] == [1, 2, 3, 4]
    assert pol.retrieve_mode == "one_shot" and pol.generator == "stub"
    assert pol.meta["base_rate_none_correct"] == 8 / 38 and pol.meta["n_calibration"] == 2 + 9
    assert max(v for k, v in pol.meta["cv_auc"].items() if k.startswith("2/mean/")) > 0.9 and pol.meta["calibration_auc"] == 1.0
    assert pol.threshold < NEVER  # a clean signal: the calibrated threshold lets `none` answer
    assert pol.stop is not None and pol.meta["stop_calibration_auc"] == 1.0
    with pytest.raises(ConfigError, match="retrieve_mode"):
        train_probe(recs, _FeatureGen(), retrieve_mode="none")
    with pytest.raises(ConfigError, match="2 examples of each class"):
        train_probe(_records(1, 30), _FeatureGen())


# ---------------------------------------------------------------- the head on synthetic signals

def _synthetic(n: int, d: int, seed: int, pos_share: float = 0.5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 3] + 0.5 * X[:, 7] > np.quantile(X[:, 3] + 0.5 * X[:, 7], 1 - pos_share)).astype(int)
    return X * rng.uniform(0.5, 20, size=d) + rng.normal(size=d) * 5, y  # unscaled columns: standardisation matters


def test_head_learns_a_separable_signal_and_not_shuffled_labels():
    X, y = _synthetic(600, 32, seed=1)
    head = fit_head(X[:300], y[:300], l2=1.0)
    assert auc(head.proba(X[300:]), y[300:]) > 0.97
    shuffled = [auc(fit_head(X[:300], np.random.default_rng(s).permutation(y[:300])).proba(X[300:]), y[300:])
                for s in range(5)]
    assert max(shuffled) < 0.7 and abs(np.mean(shuffled) - 0.5) < 0.1


def test_head_balances_rare_positives():
    X, y = _synthetic(600, 32, seed=3, pos_share=0.05)
    head = fit_head(X[:300], y[:300], l2=1.0)
    p = head.proba(X[300:])
    assert auc(p, y[300:]) > 0.9
    assert (p[y[300:] == 1] >= 0.5).mean() > 0.7  # balanced weights: positives are not drowned at 0.5


def test_head_needs_both_classes():
    with pytest.raises(ConfigError, match="both classes"):
        fit_head(np.ones((4, 3)), [0, 0, 0, 0])


def test_select_head_picks_the_informative_layer():
    X, y = _synthetic(120, 16, seed=4, pos_share=0.2)
    noise = np.random.default_rng(5).normal(size=X.shape)
    best, l2, scores = select_head({(3, "last"): noise, (9, "mean"): X, (12, "last"): noise[::-1]}, y,
                                   l2s=(1.0, 100.0))
    assert best == (9, "mean") and l2 in (1.0, 100.0) and len(scores) == 6
    assert max(scores["9/mean/1"], scores["9/mean/100"]) > 0.9 > max(scores["3/last/1"], scores["12/last/100"])
    with pytest.raises(ConfigError, match="2 examples of each class"):
        select_head({(1, "last"): X}, np.eye(len(y))[0].astype(int))


def test_auc_definition():
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert auc([0.5, 0.5], [0, 1]) == 0.5 and auc([0.2, 0.3], [1, 1]) == 0.5


# ---------------------------------------------------------------- threshold calibration (hand examples)

def test_threshold_maximises_mean_gain():
    # none's reward if chosen (gain_yes) vs the retrieval mode's (gain_no), per calibration question:
    p = [0.2, 0.6, 0.9]
    gain_yes, gain_no = [-1.0, 1.0, 1.0], [0.9, 0.9, -1.0]
    # t=NEVER: (0.9+0.9-1)/3=0.267; t=0.9: (0.9+0.9+1)/3=0.933; t=0.6: (0.9+1+1)/3=0.967; t=0.2: (-1+1+1)/3=0.333
    assert calibrate_threshold(p, gain_yes, gain_no) == 0.6


def test_threshold_ties_go_to_the_cautious_side_and_never_is_possible():
    assert calibrate_threshold([0.3, 0.7], [1.0, 1.0], [1.0, 1.0]) == NEVER  # all equal: never say yes
    assert calibrate_threshold([0.3, 0.7], [-1.0, -1.0], [0.9, 0.9]) == NEVER  # yes always costs
    assert calibrate_threshold([0.3, 0.7], [-1.0, 1.0], [0.9, 0.9]) == 0.7
    with pytest.raises(ConfigError):
        calibrate_threshold([], [], [])


def test_calibration_part_is_stratified_and_deterministic():
    ids = [f"id{i}" for i in range(20)]
    y = [1, 1, 1] + [0] * 17
    cal = calibration_part(ids, y, 0.3)
    assert cal[:3].sum() == 1 and cal[3:].sum() == 5  # round(0.9) positives, round(5.1) negatives
    assert (cal == calibration_part(ids, y, 0.3)).all()


# ---------------------------------------------------------------- policy file and controller

def _policy(d: int = 6, threshold: float = 0.5, stop: bool = True) -> ProbePolicy:
    w = np.zeros(d)
    w[0] = 4.0
    head = ProbeHead(3, "last", np.zeros(d), np.ones(d), w, 0.0)
    return ProbePolicy(head, threshold, "iterative", "tiny", head if stop else None, 0.5, meta={"n_train": 7})


def test_policy_round_trip_and_checksum(tmp_path):
    pol = _policy()
    save_probe(pol, tmp_path / "p")
    m = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert m["format"] == "adarag-policy" and m["version"] == 2 and m["kind"] == "probe"
    again = load_probe(tmp_path / "p")
    np.testing.assert_array_equal(again.head.w, pol.head.w)
    assert (again.head.layer, again.head.pool, again.threshold, again.stop_threshold) == (3, "last", 0.5, 0.5)
    assert again.retrieve_mode == "iterative" and again.generator == "tiny" and again.meta["n_train"] == 7
    with pytest.raises(ConfigError, match="probe"):
        load_policy(tmp_path / "p")  # a bandit loader refuses a probe, naming the kind
    save_probe(_policy(stop=False), tmp_path / "q")
    assert load_probe(tmp_path / "q").stop is None
    w = np.load(tmp_path / "p" / "head_w.npy")
    w[0] += 1
    np.save(tmp_path / "p" / "head_w.npy", w)
    with pytest.raises(IndexFormatError, match="checksum"):
        load_probe(tmp_path / "p")


class _StubGen:
    """Hidden state = [x, 0, ...] where x is the question's number: a controllable probe input."""

    def __init__(self, d: int = 6) -> None:
        self.name, self.model = "tiny", SimpleNamespace(config=SimpleNamespace(hidden_size=d))
        self.seen: list = []

    def hidden_states(self, prompts, layers, *, pool="last", batch_size=8):
        self.seen.append((prompts, list(layers), pool))
        H = np.zeros((len(layers), len(prompts), self.model.config.hidden_size), dtype=np.float32)
        for i, msgs in enumerate(prompts):
            H[:, i, 0] = float(msgs[-1]["content"].split()[-1]) if msgs[-1]["role"] == "user" and \
                msgs[-1]["content"].startswith("Question") else float(msgs[-2]["content"])
        return H


def test_controller_chooses_by_threshold_and_stops_on_draft(tmp_path):
    save_probe(_policy(), tmp_path / "p")
    gen = _StubGen()
    ctl = load_controller(str(tmp_path / "p"), rag=SimpleNamespace(generator=gen))
    assert isinstance(ctl, ProbeController)
    yes, no = ctl.choose("Question 2"), ctl.choose("Question -2")  # sigmoid(8) vs sigmoid(-8)
    assert yes.mode == "none" and no.mode == "iterative" and yes.propensity == 1.0
    assert yes.scores["p_answerable"] > 0.99 and no.scores["p_answerable"] < 0.01
    assert gen.seen[0][1:] == ([3], "last")
    assert ctl.should_stop("Question 0", "3") and not ctl.should_stop("Question 0", "-3")
    assert not ctl.should_stop("Question 0", "  ")  # no draft yet: keep going
    before = ctl.choose("Question 1").scores
    for _ in range(5):
        ctl.update("Question 1", "iterative", 1.0)  # offline-trained: feedback is logged, not learned
    assert ctl.choose("Question 1").scores == before
    wrong = load_controller(str(tmp_path / "p"), rag=SimpleNamespace(generator=_StubGen(d=9)))
    with pytest.raises(ConfigError, match="--kind probe"):
        wrong.choose("Question 1")


# ---------------------------------------------------------------- the iterative stop hook

@dataclass(frozen=True)
class _Gen:
    text: str
    n_prompt_tokens: int = 10
    n_new_tokens: int = 3


def _iterative(should_stop):
    rets, asked = [], []

    def retrieve(q):
        rets.append(q)
        return [Hit(id=f"p{len(rets)}", score=1.0, title="t", text=f"passage {len(rets)}")]

    def generate(messages, max_new_tokens, *, final=False):
        return _Gen("Final [1]" if final else f"Thought number {len(rets)}.")

    def stop(q, draft):
        asked.append((q, draft))
        return should_stop(q, draft)

    ctx = ModeContext(retrieve=retrieve, generate=generate, max_steps=4,
                      should_stop=stop if should_stop is not None else None)
    return run_mode("iterative", "Q?", ctx), rets, asked


def test_iterative_stop_hook_stops_early_when_told():
    full, rets, _ = _iterative(None)
    assert full.retrieval_calls == 4 and len(rets) == 4
    early, rets, asked = _iterative(lambda q, d: True)
    assert early.retrieval_calls == 1 and rets == ["Q?"]
    assert asked == [("Q?", "Thought number 1.")]
    assert [s.kind for s in early.trace] == ["retrieve", "thought", "stop", "answer"]
    second, rets, asked = _iterative(lambda q, d: "2" in d)  # stops once the draft says so
    assert second.retrieval_calls == 2 and asked[-1] == ("Q?", "Thought number 1. Thought number 2.")
    with pytest.raises(ConfigError, match="should_stop"):
        ModeContext(retrieve=lambda q: [], generate=lambda *a, **k: None, should_stop="yes")


def test_shipped_probe_policy_loads():
    pol = load_probe(DEFAULT_PROBE)  # checksums verified
    assert pol.generator == "qwen-0.5b" and len(pol.head.w) == len(pol.head.mean) == 896  # Qwen2.5-0.5B width
    assert pol.retrieve_mode in ("one_shot", "iterative", "chain") and pol.meta["n_train"] >= 50
    ctl = load_controller("probe", rag=SimpleNamespace(generator=_StubGen(d=896)))
    assert isinstance(ctl, ProbeController) and ctl.policy.threshold == pol.threshold


class TestProbeController(ControllerConformance):
    @pytest.fixture
    def controller(self, tmp_path):
        save_probe(_policy(), tmp_path / "p")
        return load_controller(str(tmp_path / "p"), rag=SimpleNamespace(generator=_StubGen()))

    @pytest.fixture
    def question(self):
        return "Question 2"
