"""Train from a (synthetic) collect cache and replay the held-out split, through the CLI."""
from __future__ import annotations


def test_quality_bar_against_the_best_fixed_mode():
    from eval.controller_replay import quality_bar

    row = lambda em, f1, calls: {"em": em, "f1": f1, "retrieval_calls_per_q": calls}
    rows = {"none": row(0.0, 0.1, 0.0), "one_shot": row(0.2, 0.3, 1.0), "iterative": row(0.2, 0.35, 2.0),
            "chain": row(0.1, 0.3, 1.0), "equal": row(0.2, 0.2, 1.2), "costly": row(0.24, 0.3, 1.3),
            "weak": row(0.16, 0.3, 0.5)}
    bar = quality_bar(rows)
    assert set(bar) == {"equal", "costly", "weak"}
    assert bar["equal"]["best_fixed"] == "iterative"  # EM tie with one_shot, higher F1
    assert bar["equal"]["passes"] and abs(bar["equal"]["calls_share"] - 0.6) < 1e-12  # = EM at 60% of the calls
    assert not bar["costly"]["passes"] and abs(bar["costly"]["calls_share"] - 0.65) < 1e-12  # 65% > 60%
    assert not bar["weak"]["passes"] and bar["weak"]["calls_share"] == 0.25  # cheap but below the best EM
    # issue 20's F1 bar: iterative's F1 (0.35) at <= 60% of its calls (2.0), and above one_shot's F1
    rows["smart"] = row(0.2, 0.36, 1.2)
    rows["cheap_but_one_shot_level"] = row(0.2, 0.30, 0.5)
    bar = quality_bar(rows)
    assert bar["smart"]["best_fixed_f1"] == "iterative" and bar["smart"]["passes_f1"]
    assert not bar["cheap_but_one_shot_level"]["passes_f1"] and not bar["equal"]["passes_f1"]


def test_replay_rows_break_a_mixed_cache_down_per_set():
    from eval.controller_replay import _row

    arm = lambda em, calls: {"em": em, "f1": em, "retrieval_calls": calls, "n_new_tokens": 3, "seconds": 1.0}
    recs = [{"id": f"{d}{i}", "dataset": d, "arms": {"none": arm(float(d == "squad"), 0)}}
            for d in ("squad", "musique") for i in range(3)]
    row = _row(recs, ["none"] * 6)
    assert row["em"] == 0.5 and row["n"] == 6
    assert {d: r["em"] for d, r in row["by_dataset"].items()} == {"squad": 1.0, "musique": 0.0}
    assert "by_dataset" not in row["by_dataset"]["squad"]
    assert "by_dataset" not in _row(recs[:3], ["none"] * 3)  # one set: no breakdown
