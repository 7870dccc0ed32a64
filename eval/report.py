"""`adarag report RUN_DIR ...`: one Markdown and one self-contained HTML page comparing QA runs.

Sections: metrics side by side, cost-vs-accuracy scatter (inline SVG, no plotting library), paired-bootstrap confidence
intervals on each run's difference to the first run (over the questions both answered, fixed seed), and a
per-question drill-down.
"""
from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval.qa_files import CONFIG, METRICS, PREDICTIONS, read_predictions
from indexers.errors import ConfigError

__all__ = ["COST_TABLE", "REPORT_CSS", "TABLE_METRICS", "Difference", "Run", "cost_accuracy_svg", "fmt_cell",
           "html_table", "load_run", "md_table", "paired_bootstrap", "write_cost_report", "write_report"]

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


def fmt_cell(v: Any) -> str:
    """A table cell: a float to 4 decimals (1 from 10 up), a dash for a missing value."""
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def cost_accuracy_svg(points: Sequence[tuple[str, float, float, float]], *, x_label: str = "retrieval calls / question",
                      width: int = 640, height: int = 380) -> str:
    """An inline SVG scatter: one (name, cost, EM, F1) point pair per mode or controller; EM filled circle, F1
    hollow square, same colour per name. Hand-written so the page needs no plotting library and no network."""
    left, right, top, bottom = 56, 170, 24, 48
    pw, ph = width - left - right, height - top - bottom
    xmax = max([p[1] for p in points] + [1.0])
    xmax = float(np.ceil(xmax * 2) / 2)  # the axis ends on a half call
    ymax = min(1.0, max(0.1, float(np.ceil(max([max(p[2], p[3]) for p in points] + [0.0]) * 10 + 1) / 10)))
    sx = lambda x: left + pw * x / xmax
    sy = lambda y: top + ph * (1 - y / ymax)
    out = [(f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} "
            f"{height}' font-family='sans-serif' font-size='11' role='img' aria-label='cost vs accuracy'>"),
           f"<rect x='{left}' y='{top}' width='{pw}' height='{ph}' fill='none' stroke='#999'/>"]
    for i in range(round(xmax * 2) + 1):
        x = i / 2
        out.append(f"<line x1='{sx(x):.1f}' y1='{top}' x2='{sx(x):.1f}' y2='{top + ph}' stroke='#eee'/>"
                   f"<text x='{sx(x):.1f}' y='{top + ph + 14}' text-anchor='middle'>{x:g}</text>")
    for i in range(round(ymax * 10) + 1):
        y = i / 10
        out.append(f"<line x1='{left}' y1='{sy(y):.1f}' x2='{left + pw}' y2='{sy(y):.1f}' stroke='#eee'/>"
                   f"<text x='{left - 6}' y='{sy(y) + 4:.1f}' text-anchor='end'>{y:.1f}</text>")
    out.append(f"<text x='{left + pw / 2}' y='{height - 10}' text-anchor='middle'>{html.escape(x_label)}</text>"
               f"<text x='14' y='{top + ph / 2}' text-anchor='middle' transform='rotate(-90 14 {top + ph / 2})'>"
               "EM (filled) / F1 (hollow)</text>")
    for i, (name, cost, em, f1) in enumerate(points):
        c, label = _COLORS[i % len(_COLORS)], html.escape(name)
        out.append(f"<g class='point'><title>{label}: {cost:.2f} calls/q, EM {em:.3f}, F1 {f1:.3f}</title>"
                   f"<circle cx='{sx(cost):.1f}' cy='{sy(em):.1f}' r='5' fill='{c}'/>"
                   f"<rect x='{sx(cost) - 4:.1f}' y='{sy(f1) - 4:.1f}' width='8' height='8' fill='none' stroke='{c}' "
                   "stroke-width='2'/></g>")
        ly = top + 10 + 16 * i
        out.append(f"<circle cx='{left + pw + 16}' cy='{ly}' r='5' fill='{c}'/>"
                   f"<text x='{left + pw + 26}' y='{ly + 4}'>{label}</text>")
    out.append("</svg>")
    return "".join(out)


def _plot(runs: Sequence[Run]) -> str:
    return cost_accuracy_svg([(r.name, r.metrics.get("retrieval_calls_per_q") or 0.0, r.metrics.get("em") or 0.0,
                               r.metrics.get("f1") or 0.0) for r in runs])


COST_TABLE = ("n", "em", "f1", "retrieval_calls_per_q", "tokens_per_q", "seconds_per_q")


def write_cost_report(rows: dict[str, dict[str, Any]], out_dir: str | Path, *, title: str, note: str = ""
                      ) -> tuple[Path, Path]:
    """report.md + report.html for named result rows (a mode, a controller -> its metrics dict): the cost table
    with mode counts and the cost-vs-accuracy SVG (embedded in the HTML, cost_vs_accuracy.svg beside the Markdown)."""
    if not rows:
        raise ConfigError("write_cost_report needs at least one row")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    header = ["condition", *COST_TABLE, "modes"]
    table = [[name, *(fmt_cell(r.get(k)) for k in COST_TABLE),
              ", ".join(f"{m} {c}" for m, c in sorted((r.get("mode_counts") or {}).items(), key=lambda x: -x[1]))]
             for name, r in rows.items()]
    svg = cost_accuracy_svg([(name, r.get("retrieval_calls_per_q") or 0.0, r.get("em") or 0.0, r.get("f1") or 0.0)
                             for name, r in rows.items()])
    (out_dir / "cost_vs_accuracy.svg").write_text(svg + "\n", encoding="utf-8")
    md = [f"# {title}", "", note, "", md_table(header, table), "", "## Cost vs accuracy", "",
          "![cost vs accuracy](cost_vs_accuracy.svg)", ""]
    md_path = out_dir / "report.md"
    md_path.write_text("\n".join(md), encoding="utf-8")
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(note)}</p>", html_table(header, table),
            "<h2>Cost vs accuracy</h2>", svg]
    html_path = out_dir / "report.html"
    html_path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                         f"<style>{REPORT_CSS}</style></head><body>{''.join(body)}</body></html>", encoding="utf-8")
    return md_path, html_path


def _table_rows(runs: Sequence[Run]) -> list[list[str]]:
    rows = [[m] + [fmt_cell(r.metrics.get(m)) for r in runs] for m in TABLE_METRICS]
    rows.insert(7, ["k"] + [fmt_cell(r.metrics.get("k")) for r in runs])
    rows.append(["mode"] + [str(r.config.get("mode", "")) for r in runs])
    rows.append(["generator"] + [str(r.config.get("generator", "")) for r in runs])
    return rows


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (pipes and newlines in cells escaped)."""
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table, every cell escaped."""
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
    return md_table(header, rows)


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
                f"support recall {fmt_cell(s.get('support_recall'))} · citations {html.escape(', '.join(r['citations']))} · "
                f"{r['retrieval_calls']} retrieval call(s), {r['n_new_tokens']} new tokens, {r['seconds']:.2f} s</p>"
                f"<ol>{passages}</ol>")
        parts.append(f"<details><summary><span class='{'ok' if ok_any else 'bad'}'>{'✔' if ok_any else '✘'}</span> "
                     f"{html.escape(rec['question'])} — gold: {gold}</summary>{''.join(inner)}</details>")
    return "\n".join(parts)


REPORT_CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
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
    svg = _plot(runs)
    (out_dir / "cost_vs_accuracy.svg").write_text(svg + "\n", encoding="utf-8")
    diff_note = ("Paired bootstrap over the questions both runs answered (2000 resamples, seed 0), "
                 f"each run minus `{runs[0].name}`.")
    md = ["# QA evaluation report", "", "## Metrics", "", md_table(header, rows), "",
          "## Cost vs accuracy", "", "![cost vs accuracy](cost_vs_accuracy.svg)", "",
          "## Differences (95% bootstrap CI)", ""]
    md += [diff_note, "", md_table(_DIFF_HEADER, _diff_rows(diffs))] if diffs else ["Needs two runs over shared questions."]
    md += ["", "## Per question", "", _drill_md(runs), ""]
    md_path = out_dir / "report.md"
    md_path.write_text("\n".join(md), encoding="utf-8")
    body = ["<h1>QA evaluation report</h1>", "<h2>Metrics</h2>", html_table(header, rows),
            "<h2>Cost vs accuracy</h2>", svg,
            "<h2>Differences (95% bootstrap CI)</h2>"]
    body += ([f"<p>{html.escape(diff_note)}</p>", html_table(_DIFF_HEADER, _diff_rows(diffs))] if diffs
             else ["<p>Needs two runs over shared questions.</p>"])
    legend = "<p>✔ = exact match or gold contained in the prediction; green passages are supporting.</p>"
    body += ["<h2>Per question</h2>", legend, _drill_html(runs)]
    html_path = out_dir / "report.html"
    html_path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>QA report</title>"
                         f"<style>{REPORT_CSS}</style></head><body>{''.join(body)}</body></html>", encoding="utf-8")
    return md_path, html_path
