"""Markdown + self-contained HTML report comparing BEIR run directories (see eval.beir): a metrics table and a
bar chart with one bar per configuration for each metric (PNG, base64-embedded in the HTML)."""
from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.beir_files import METRICS, METRICS_FILE
from eval.report import REPORT_CSS, fmt_cell, html_table, md_table
from indexers.errors import ConfigError, missing

__all__ = ["load_beir_run", "write_2cr_report", "write_beir_report"]

_EXTRA = ("n_queries", "k", "queries_per_s")


def load_beir_run(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        raise ConfigError(f"{run_dir} is not a finished BEIR run (no {METRICS_FILE}): run "
                          f"`adarag eval beir --out {run_dir}` first")
    return json.loads(path.read_text(encoding="utf-8"))


def _labels(run_dirs: Sequence[Path], runs: Sequence[dict[str, Any]]) -> list[str]:
    """Label each run by its config; a repeated config gets its directory name added."""
    configs = [str(r.get("config", d.name)) for d, r in zip(run_dirs, runs)]
    out = []
    for i, (d, c) in enumerate(zip(run_dirs, configs)):
        label = c if configs.count(c) == 1 else f"{c} ({d.name or i})"
        out.append(label if label not in out else f"{label}#{i}")
    return out


def _bar_chart(labels: Sequence[str], runs: Sequence[dict[str, Any]]) -> bytes:
    try:
        import matplotlib
    except ImportError as e:
        raise missing("eval", "matplotlib") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(runs)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(METRICS) + 0.4 * n), 3.8), dpi=100)
    for i, (label, run) in enumerate(zip(labels, runs)):
        xs = [j + (i - (n - 1) / 2) * width for j in range(len(METRICS))]
        ys = [float(run.get(m) or 0.0) for m in METRICS]
        bars = ax.bar(xs, ys, width, label=label)
        ax.bar_label(bars, labels=[f"{y:.3f}" for y in ys], fontsize=6, padding=1)
    ax.set_xticks(range(len(METRICS)), [m for m in METRICS])
    ax.set_ylim(0, 1.22)  # headroom for the legend above the bars
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("score")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(n, 5), loc="upper center")
    data = {str(r.get("data", "")).rstrip("/").rsplit("/", 1)[-1] for r in runs}
    ax.set_title(f"BEIR retrieval: {', '.join(sorted(data))}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def write_beir_report(run_dirs: Sequence[str | Path], out: str | Path) -> tuple[Path, Path]:
    """Write `report.md`, `report.html` and `beir_metrics.png` into `out`, one column per run."""
    if not run_dirs:
        raise ConfigError("write_beir_report needs at least one run directory")
    dirs = [Path(d) for d in run_dirs]
    runs = [load_beir_run(d) for d in dirs]
    labels = _labels(dirs, runs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    header = ["configuration"] + list(METRICS) + list(_EXTRA)
    rows = [[label] + [fmt_cell(r.get(m)) for m in METRICS] + [fmt_cell(r.get(m)) for m in _EXTRA]
            for label, r in zip(labels, runs)]
    png = _bar_chart(labels, runs)
    (out / "beir_metrics.png").write_bytes(png)
    sources = [[label, str(r.get("data", "")), str(r.get("split", "")), str(r.get("index", "")), str(d)]
               for label, r, d in zip(labels, runs, dirs)]
    src_header = ["configuration", "data", "split", "index", "run directory"]
    note = ("Metrics by pytrec_eval (trec_eval): nDCG@10 = ndcg_cut_10, Recall@100 = recall_100, MRR@10 = "
            "recip_rank over the top 10, MAP = map over the run; documents ranked by their best passage (MaxP); "
            "mean over every judged query.")
    md = ["# BEIR evaluation report", "", note, "", "## Metrics", "", md_table(header, rows), "",
          "![metrics per configuration](beir_metrics.png)", "", "## Runs", "", md_table(src_header, sources), ""]
    md_path = out / "report.md"
    md_path.write_text("\n".join(md), encoding="utf-8")
    img = base64.b64encode(png).decode("ascii")
    body = ["<h1>BEIR evaluation report</h1>", f"<p>{html.escape(note)}</p>", "<h2>Metrics</h2>",
            html_table(header, rows), f"<img alt='metrics per configuration' src='data:image/png;base64,{img}'>",
            "<h2>Runs</h2>", html_table(src_header, sources)]
    html_path = out / "report.html"
    html_path.write_text("<!doctype html><html><head><meta charset='utf-8'><title>BEIR report</title>"
                         f"<style>{REPORT_CSS}</style></head><body>{''.join(body)}</body></html>", encoding="utf-8")
    return md_path, html_path


_MARK = {"OK": "OK", "OKish": "OKish", "FAIL": "**FAIL**"}


def write_2cr_report(grades: Sequence[tuple[str, str, float, float, str]], out_dir: str | Path, *,
                     source: str = "") -> tuple[Path, Path]:
    """`2cr.md` + `2cr.html`: Pyserini's two-click-reproduction table, one row per condition, one column per
    metric showing the score reproduced now, the expected one and the grade. `grades` are eval.beir.Grade rows
    (condition, metric, expected, got, grade)."""
    if not grades:
        raise ConfigError("no 2CR grades to report: run at least one condition")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = list(dict.fromkeys(g[1] for g in grades))
    by = {(g[0], g[1]): g for g in grades}
    header = ["condition"] + metrics + ["verdict"]
    rows = []
    for cond in dict.fromkeys(g[0] for g in grades):
        cells = [cond]
        for m in metrics:
            g = by.get((cond, m))
            cells.append("" if g is None else f"{g[3]:.4f} ({g[2]:.4f}, {_MARK[g[4]]})")
        worst = [by[cond, m][4] for m in metrics if (cond, m) in by]
        cells.append("FAIL" if "FAIL" in worst else "OKish" if "OKish" in worst else "OK")
        rows.append(cells)
    n_fail = sum(g[4] == "FAIL" for g in grades)
    summary = (f"{len(rows)} conditions, {len(grades)} metrics: {sum(g[4] == 'OK' for g in grades)} OK, "
               f"{sum(g[4] == 'OKish' for g in grades)} OKish, {n_fail} FAIL. "
               "Each cell: reproduced now (expected, grade); OK = equal at 4 d.p., OKish = within 5e-4.")
    src = f"\n\nExpected scores: `{source}`." if source else ""
    md = out / "2cr.md"
    md.write_text(f"# Two-click reproduction\n\n{summary}{src}\n\n{md_table(header, rows)}\n", encoding="utf-8")
    page = out / "2cr.html"
    page.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>adarag 2CR</title>"
                    f"<style>{REPORT_CSS}</style></head><body><h1>Two-click reproduction</h1>"
                    f"<p>{html.escape(summary)}</p>{html_table(header, rows)}</body></html>\n", encoding="utf-8")
    return md, page
