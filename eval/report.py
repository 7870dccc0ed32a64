"""`adarag report RUN_DIR ...`: one Markdown and one self-contained HTML page comparing QA runs.

Sections: metrics side by side, cost-vs-accuracy scatter (PNG, base64-embedded), paired-bootstrap confidence
intervals on each run's difference to the first run (over the questions both answered, fixed seed), and a
per-question drill-down.
"""
from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexers.errors import ConfigError, missing

__all__ = ["TABLE_METRICS", "Difference", "Run", "load_run", "paired_bootstrap", "write_report"]

TABLE_METRICS = ("n", "em", "f1", "accuracy", "r_precision", "r_precision_passage", "support_recall@k",
                 "kilt_em", "kilt_f1", "retrieval_calls_per_q", "tokens_per_q", "prompt_tokens_per_q",
                 "seconds_per_q")
_CI_METRICS = ("em", "f1", "accuracy")


@dataclass(frozen=True)
class Run:
    """A finished run directory: its name, config, metrics and per-question records (in file order)."""

    name: str
    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    records: list[dict[str, Any]]


@dataclass(frozen=True)
class Difference:
    """`run` minus `base` on one metric over `n` shared questions, with a 95% paired-bootstrap interval."""

    base: str
    run: str
    metric: str
    n: int
    diff: float
    lo: float
    hi: float
    p_le_zero: float  # share of bootstrap resamples with diff <= 0


def load_run(run_dir: str | Path) -> Run:
    from eval.qa_runner import CONFIG, METRICS, PREDICTIONS, read_predictions

    path = Path(run_dir)
    for name in (CONFIG, METRICS, PREDICTIONS):
        if not (path / name).exists():
            raise ConfigError(f"{path} is not a finished QA run (no {name}): run `adarag eval qa --out {path}` first")
    config = json.loads((path / CONFIG).read_text(encoding="utf-8"))
    metrics = json.loads((path / METRICS).read_text(encoding="utf-8"))
    return Run(path.name or str(path), path, config, metrics, read_predictions(path / PREDICTIONS))


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, n_boot: int = 2000,
                     seed: int = 0) -> tuple[float, float, float, float]:
    """Mean of b - a with a 95% percentile interval from resampling questions; returns (diff, lo, hi, P(diff<=0))."""
    x = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)  # [n]
    if x.size == 0:
        raise ValueError("paired_bootstrap needs at least one shared question")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)  # [n_boot]
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(x.mean()), float(lo), float(hi), float((means <= 0).mean())


def _differences(runs: Sequence[Run]) -> list[Difference]:
    out = []
    base = runs[0]
    base_by_id = {r["id"]: r for r in base.records}
    for run in runs[1:]:
        shared = [(base_by_id[r["id"]], r) for r in run.records if r["id"] in base_by_id]
        if not shared:
            continue
        for metric in _CI_METRICS:
            d, lo, hi, p = paired_bootstrap([a["scores"][metric] for a, _ in shared],
                                            [b["scores"][metric] for _, b in shared])
            out.append(Difference(base.name, run.name, metric, len(shared), d, lo, hi, p))
    return out


def _names(runs: Sequence[Run]) -> list[Run]:
    """Give runs with the same directory name distinct labels (their parent folder, then an index)."""
    seen: dict[str, int] = {}
    out = []
    for run in runs:
        name = run.name if run.name not in seen else f"{run.path.parent.name}/{run.name}"
        if name in seen:
            name = f"{name}#{len(seen)}"
        seen[name] = 1
        out.append(Run(name, run.path, run.config, run.metrics, run.records))
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def _plot(runs: Sequence[Run]) -> bytes:
    try:
        import matplotlib
    except ImportError as e:
        raise missing("eval", "matplotlib") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), dpi=100)
    costs = {"calls": lambda m: m.get("retrieval_calls_per_q") or 0.0,
             "tokens": lambda m: (m.get("prompt_tokens_per_q") or 0.0) + (m.get("tokens_per_q") or 0.0)}
    for ax, cost, label in ((axes[0], "calls", "retrieval calls / question"),
                            (axes[1], "tokens", "prompt + generated tokens / question")):
        for metric, marker in (("em", "o"), ("f1", "s")):
            xs = [costs[cost](r.metrics) for r in runs]
            ys = [r.metrics.get(metric) or 0.0 for r in runs]
            ax.scatter(xs, ys, marker=marker, label=metric.upper())
            for x, y, r in zip(xs, ys, runs):
                ax.annotate(r.name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(label)
        ax.set_ylabel("score")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("cost vs accuracy")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _table_rows(runs: Sequence[Run]) -> list[list[str]]:
    rows = [[m] + [_fmt(r.metrics.get(m)) for r in runs] for m in TABLE_METRICS]
    rows.insert(7, ["k"] + [_fmt(r.metrics.get("k")) for r in runs])
    rows.append(["mode"] + [str(r.config.get("mode", "")) for r in runs])
    rows.append(["generator"] + [str(r.config.get("generator", "")) for r in runs])
    return rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _diff_rows(diffs: Sequence[Difference]) -> list[list[str]]:
    return [[f"{d.run} − {d.base}", d.metric, str(d.n), f"{d.diff:+.4f}", f"[{d.lo:+.4f}, {d.hi:+.4f}]",
             f"{d.p_le_zero:.3f}"] for d in diffs]


_DIFF_HEADER = ["runs", "metric", "n", "difference", "95% CI", "P(diff ≤ 0)"]


def _drill_md(runs: Sequence[Run]) -> str:
    by_run = [{r["id"]: r for r in run.records} for run in runs]
    header = ["id", "question", "gold"] + [f"{run.name}: prediction (EM/F1)" for run in runs]
    rows = []
    for rec in runs[0].records:
        cells = [rec["id"], rec["question"], " / ".join(rec["answers"])]
        for recs in by_run:
            r = recs.get(rec["id"])
            cells.append("–" if r is None else
                         f"{r['prediction']} ({r['scores']['em']:.0f}/{r['scores']['f1']:.2f})")
        rows.append(cells)
    return _md_table(header, rows)


def _drill_html(runs: Sequence[Run]) -> str:
    by_run = [{r["id"]: r for r in run.records} for run in runs]
    parts = []
    for rec in runs[0].records:
        gold = html.escape(" / ".join(rec["answers"]))
        support = set(rec.get("supporting_ids") or [])
        inner = []
        ok_any = False
        for run, recs in zip(runs, by_run):
            r = recs.get(rec["id"])
            if r is None:
                inner.append(f"<h4>{html.escape(run.name)}: not answered</h4>")
                continue
            s = r["scores"]
            ok = s["em"] == 1.0 or s["accuracy"] == 1.0
            ok_any |= ok
            cls = "ok" if ok else "bad"
            passages = "".join(
                f"<li class='{'sup' if (p['id'] in support or p['doc_id'] in support) else ''}'>"
                f"<code>{html.escape(p['id'])}</code> <b>{html.escape(p.get('title') or '')}</b> "
                f"{html.escape((p.get('text') or '')[:300])}</li>" for p in r["passages"])
            inner.append(
                f"<h4>{html.escape(run.name)} <span class='{cls}'>{'✔' if ok else '✘'}</span></h4>"
                f"<p>prediction: <b>{html.escape(r['prediction'])}</b> · mode {html.escape(str(r['mode']))} · "
                f"EM {s['em']:.0f} · F1 {s['f1']:.2f} · acc {s['accuracy']:.0f} · "
                f"support recall {_fmt(s.get('support_recall'))} · citations {html.escape(', '.join(r['citations']))} · "
                f"{r['retrieval_calls']} retrieval call(s), {r['n_new_tokens']} new tokens, {r['seconds']:.2f} s</p>"
                f"<ol>{passages}</ol>")
        parts.append(f"<details><summary><span class='{'ok' if ok_any else 'bad'}'>{'✔' if ok_any else '✘'}</span> "
                     f"{html.escape(rec['question'])} — gold: {gold}</summary>{''.join(inner)}</details>")
    return "\n".join(parts)


_CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}.ok{color:#080}.bad{color:#b00}li.sup{background:#efe}"
        "details{border-bottom:1px solid #eee;padding:4px 0}summary{cursor:pointer}")


def write_report(run_dirs: Sequence[str | Path], out_dir: str | Path) -> tuple[Path, Path]:
    """Write `report.md` and `report.html` for the runs into `out_dir`; the first run is the comparison base."""
    if not run_dirs:
        raise ConfigError("write_report needs at least one run directory")
    runs = _names([load_run(d) for d in run_dirs])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    header = ["metric"] + [r.name for r in runs]
    rows = _table_rows(runs)
    diffs = _differences(runs)
    png = _plot(runs)
    (out_dir / "cost_vs_accuracy.png").write_bytes(png)
    diff_note = ("Paired bootstrap over the questions both runs answered (2000 resamples, seed 0), "
                 f"each run minus `{runs[0].name}`.")
    md = ["# QA evaluation report", "", "## Metrics", "", _md_table(header, rows), "",
          "## Cost vs accuracy", "", "![cost vs accuracy](cost_vs_accuracy.png)", "",
          "## Differences (95% bootstrap CI)", ""]
    md += [diff_note, "", _md_table(_DIFF_HEADER, _diff_rows(diffs))] if diffs else ["Needs two runs over shared questions."]
    md += ["", "## Per question", "", _drill_md(runs), ""]
    md_path = out_dir / "report.md"
    md_path.write_text("\n".join(md), encoding="utf-8")
    img = base64.b64encode(png).decode("ascii")
    body = ["<h1>QA evaluation report</h1>", "<h2>Metrics</h2>", _html_table(header, rows),
            "<h2>Cost vs accuracy</h2>", f"<img alt='cost vs accuracy' src='data:image/png;base64,{img}'>",
            "<h2>Differences (95% bootstrap CI)</h2>"]
    body += ([f"<p>{html.escape(diff_note)}</p>", _html_table(_DIFF_HEADER, _diff_rows(diffs))] if diffs
             else ["<p>Needs two runs over shared questions.</p>"])
    legend = "<p>✔ = exact match or gold contained in the prediction; green passages are supporting.</p>"
    body += ["<h2>Per question</h2>", legend, _drill_html(runs)]
    html_path = out_dir / "report.html"
    html_path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>QA report</title>"
                         f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>", encoding="utf-8")
    return md_path, html_path
