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
