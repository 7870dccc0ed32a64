"""Train a policy from a collect cache (rag.control.train) and evaluate fixed modes and policies by replaying cached outcomes.

Replay is exact for a deterministic policy: every arm was run on every cached question (eval/collect.py), so
a policy's held-out score is the cached outcome of the arm it picks. The IPS estimate under a uniform logging
policy (propensity 1/4) is reported beside it as the off-policy check.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from eval.qa_metrics import exact_match, f1_score
from eval.qa_runner import read_predictions
from indexers.errors import ConfigError
from eval.shared import portable_path
from rag.control.bandit import ips_value, load_policy
from rag.control.base import correct
from rag.control.classifier import CLASSES, load_classifier
from rag.control.load import policy_kind
from rag.control.train import index_features, outcome_matrix, train_policy
from rag.modes import MODE_NAMES

__all__ = ["read_cache", "replay_table", "train_from_cache", "write_markdown"]


def read_cache(cache: str | Path) -> list[dict[str, Any]]:
    """Every outcome line of a collect cache (all shards), one per question id, each arm's EM and F1 recomputed
    with eval.qa_metrics from its cached prediction."""
    files = sorted(Path(cache).glob("outcomes-*.jsonl"))
    if not files:
        raise ConfigError(f"{cache} holds no outcomes-*.jsonl: run `adarag controller collect --out {cache}` first")
    by_id = {r["id"]: r for f in files for r in read_predictions(f)}
    for r in by_id.values():  # scored now, from the cached predictions: the scorer may be newer than the cache
        for o in r["arms"].values():
            o["em"], o["f1"] = exact_match(o["prediction"], r["answers"]), f1_score(o["prediction"], r["answers"])
    return list(by_id.values())


def _cache_generator(cache: str | Path, generator: str | None) -> str:
    """The generator a cache was collected with (its config.json), unless one is named."""
    if generator:
        return generator
    cfg = Path(cache) / "config.json"
    return json.loads(cfg.read_text(encoding="utf-8"))["generator"] if cfg.exists() else "qwen-0.5b"


def train_from_cache(cache: str | Path, index: str | Path, out: str | Path, *, kind: str = "linucb",
                     lam: float = 0.1, f1_threshold: float = 0.5, epochs: int = 5, seed: int = 0,
                     generator: str | None = None, threads: int | None = 1, feedback: str = "full",
                     cv: bool = False) -> dict[str, Any]:
    """Fit a policy (rag.control.train.train_policy) on the cache's train split and save it in `out`."""
    recs = [r for r in read_cache(cache) if r["split"] == "train"]
    return train_policy(recs, out, index=index, kind=kind, lam=lam, f1_threshold=f1_threshold, epochs=epochs,
                        seed=seed, generator=_cache_generator(cache, generator), threads=threads, feedback=feedback,
                        cv=cv, meta={"cache": portable_path(cache)})


def _row(recs: list[dict], arms: list[str], *, split_sets: bool = True) -> dict[str, Any]:
    """Means over the questions of the arm each one got; for a mixed cache (eval.mixed), per set too."""
    outs = [r["arms"][a] for r, a in zip(recs, arms)]
    n = len(outs)

    def mean(key: str) -> float | None:
        return sum(o[key] for o in outs) / n if n else None

    row = {"em": mean("em"), "f1": mean("f1"), "retrieval_calls_per_q": mean("retrieval_calls"),
           "tokens_per_q": mean("n_new_tokens"), "seconds_per_q": mean("seconds"),
           "mode_counts": dict(Counter(arms)), "n": n}
    sets = sorted({r.get("dataset", "") for r in recs} - {""})
    if split_sets and len(sets) > 1:
        row["by_dataset"] = {d: _row([r for r in recs if r.get("dataset") == d],
                                     [a for r, a in zip(recs, arms) if r.get("dataset") == d], split_sets=False)
                             for d in sets}
    return row


def _picked_reward(recs: list[dict], picks: list[str], lam: float, f1_threshold: float) -> float:
    """Mean MBA-RAG reward of the cached outcome of the mode picked for each question."""
    return float(np.mean([outcome_matrix([r], [m], lam, f1_threshold)[0, 0] for r, m in zip(recs, picks)]))


def replay_table(cache: str | Path, index: str | Path, policies: dict[str, str | Path], *,
                 split: str = "heldout") -> dict[str, Any]:
    """Rows for each fixed mode and each policy (name -> policy dir) on one split, plus IPS checks. `split="all"`
    replays every cached question: for a QA set no policy was trained on (e.g. FanOutQA under HotpotQA policies)."""
    if split not in ("heldout", "train", "all"):
        raise ConfigError(f"unknown split {split!r}: use heldout, train or all")
    recs = [r for r in read_cache(cache) if split == "all" or r["split"] == split]
    if not recs:
        raise ConfigError(f"{cache} has no {split} questions yet: collect more")
    rows = {m: _row(recs, [m] * len(recs)) for m in MODE_NAMES}
    cheap, emb = index_features(index, [r["question"] for r in recs])
    rng = np.random.default_rng(0)
    for name, path in policies.items():
        if policy_kind(path) == "probe":
            rows[name] = _probe_row(recs, path)
            continue
        if policy_kind(path) == "classifier":
            cpol = load_classifier(path)
            picks = [cpol.mode_of(CLASSES[int(i)]) for i in cpol.proba(cheap, emb).argmax(1)]
            rows[name] = _row(recs, picks)
            rows[name]["reward_exact"] = _picked_reward(recs, picks, cpol.lam, cpol.f1_threshold)
            continue
        pol = load_policy(path)
        X = pol.context(cheap, emb)
        picks = [int(np.argmax(pol.scores(x, explore=False))) for x in X]
        rows[name] = _row(recs, [pol.arms[a] for a in picks])
        R = outcome_matrix(recs, pol.arms, pol.lam, pol.f1_threshold)
        logged = rng.integers(0, len(pol.arms), size=len(recs))
        rows[name]["reward_exact"] = float(R[np.arange(len(recs)), picks].mean())
        rows[name]["reward_ips_uniform_log"] = ips_value(picks, logged, np.full(len(recs), 1 / len(pol.arms)),
                                                         R[np.arange(len(recs)), logged])
    return rows


def _probe_row(recs: list[dict], path: str | Path) -> dict[str, Any]:
    """A probe's held-out row: it picks none or its retrieval mode from the generator's hidden states."""
    from rag.generator import Generator
    from rag.control.probe import load_probe
    from rag.control.train import auc
    from rag.prompts import probe_messages

    pol = load_probe(path)
    gen = Generator.load(pol.generator, threads=1)
    t = time.perf_counter()
    H = gen.hidden_states([probe_messages(r["question"]) for r in recs], [pol.head.layer], pool=pol.head.pool)[0]
    probe_seconds = (time.perf_counter() - t) / len(recs)  # the probe's own forward, not in the cached arm times
    p = pol.head.proba(H)
    picks = [pol.choose(float(x)) for x in p]
    y = [int(correct(r["arms"]["none"]["em"], r["arms"]["none"]["f1"], f1_threshold=pol.f1_threshold)) for r in recs]
    return {**_row(recs, picks), "reward_exact": _picked_reward(recs, picks, pol.lam, pol.f1_threshold), "heldout_base_rate_none_correct": float(np.mean(y)),
            "heldout_auc": auc(p, y), "threshold": pol.threshold, "probe_seconds_per_q": probe_seconds,
            "p_answerable": [float(x) for x in p]}


def quality_bar(rows: dict[str, Any], *, share: float = 0.6) -> dict[str, dict[str, Any]]:
    """Issue 8's bar for each controller row: EM at least the best fixed mode's (best EM, then F1, then fewer
    calls) with at most `share` of its retrieval calls."""
    fixed = [m for m in MODE_NAMES if m in rows]
    best = max(fixed, key=lambda m: (rows[m]["em"], rows[m]["f1"], -rows[m]["retrieval_calls_per_q"]))
    b = rows[best]
    out = {}
    for name, r in rows.items():
        if name in MODE_NAMES:
            continue
        calls_share = r["retrieval_calls_per_q"] / b["retrieval_calls_per_q"] if b["retrieval_calls_per_q"] else None
        best_f1 = max(fixed, key=lambda m: (rows[m]["f1"], -rows[m]["retrieval_calls_per_q"]))
        bf = rows[best_f1]
        f1_share = r["retrieval_calls_per_q"] / bf["retrieval_calls_per_q"] if bf["retrieval_calls_per_q"] else None
        out[name] = {"best_fixed": best, "em": r["em"], "best_em": b["em"], "f1": r["f1"], "best_f1": b["f1"],
                     "calls_share": calls_share,
                     "passes": bool(r["em"] >= b["em"] and calls_share is not None and calls_share <= share),
                     # issue 20's bar: the best fixed mode's F1 at <= `share` of its calls, and above one_shot's
                     "best_fixed_f1": best_f1, "f1_calls_share": f1_share,
                     "passes_f1": bool(r["f1"] >= bf["f1"] and f1_share is not None and f1_share <= share
                                       and ("one_shot" not in rows or r["f1"] > rows["one_shot"]["f1"]))}
    return out


def write_markdown(rows: dict[str, Any], out: str | Path, note: str = "") -> Path:
    """The replay table as report.md + report.html (cost table, mode counts, cost-vs-accuracy SVG), rows.json and
    quality_bar.json (each controller against the best fixed mode)."""
    from eval.report import write_cost_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rows.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    bar = quality_bar(rows)
    (out / "quality_bar.json").write_text(json.dumps(bar, indent=2) + "\n", encoding="utf-8")
    lines = [f"{name}: EM {q['em']:.3f} vs {q['best_fixed']} {q['best_em']:.3f}, F1 {q['f1']:.3f} vs "
             f"{q['best_f1']:.3f}, retrieval calls {_share(q['calls_share'])} of {q['best_fixed']}'s: "
             f"{'passes' if q['passes'] else 'misses'} the bar (>= its EM at <= 60% of its calls)."
             for name, q in bar.items()]
    note = " ".join([note, *lines]) if lines else note
    sets = sorted({d for r in rows.values() for d in r.get("by_dataset", {})})
    if sets:  # a mixed cache: F1 and retrieval calls per set, one row per mode or controller
        from eval.report import md_table

        table = md_table(["condition", *sets], [[name, *(f"{r['by_dataset'][d]['f1']:.3f} ({r['by_dataset'][d]['retrieval_calls_per_q']:.2f})"
                                                       if d in r.get("by_dataset", {}) else "" for d in sets)]
                                               for name, r in rows.items()])
        (out / "by_dataset.md").write_text("# Per set: F1 (retrieval calls per question)\n\n" + table + "\n",
                                           encoding="utf-8")
    return write_cost_report(rows, out, title="Controller replay on the held-out split", note=note)[0]


def _share(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"
