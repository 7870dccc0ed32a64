"""Run a QA set through an answerer and score it: resumable predictions JSONL with full traces, config.json,
metrics.json, and the report (report.md / report.html) in one run directory.

Resuming: predictions are appended one flushed line per question; a restarted run skips ids already there
(a torn last line from a kill is dropped). A run directory belongs to one configuration: restarting with a
different one is refused rather than mixing two runs in one file.
"""
from __future__ import annotations

import inspect
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eval.qa_data import QAExample, QAFormat, load_qa
from eval.qa_metrics import QAScores, aggregate, score_example
from indexers.errors import ConfigError, positive_int
from indexers.ingest import doc_id_of
from indexers.types import Hit
from eval.qa_files import CONFIG, METRICS, PREDICTIONS, read_predictions
from eval.report import write_report
from eval.shared import portable_path
from rag.trace import ControllerStep, trace_dicts

__all__ = [
    "CONFIG",
    "METRICS",
    "MODES",
    "PREDICTIONS",
    "AnswerFn",
    "metrics_from_records",
    "read_predictions",
    "run_qa",
    "run_qa_eval",
]

log = logging.getLogger(__name__)

# Config keys that must match to resume into an existing run directory.
_RESUME_KEYS = ("data", "index", "mode", "generator", "k", "store", "max_new_tokens", "format")

AnswerFn = Callable[[str], Any]
"""question -> an answer with rag.sdk.Answer's fields (rag.modes.ModeResult has them too): .answer, .passages
(Hits), .retrieval_calls required; .citations, .citation_source, .mode, .timings, .n_prompt_tokens,
.n_new_tokens, .raw_text and .trace (rag.trace steps) recorded when present."""


def _search_mode(name: str) -> Callable[..., AnswerFn]:
    """A fixed search mode from rag.modes (none, one_shot, iterative, chain) bound to an opened RAG: every fixed
    mode runs through the same ModeContext (fixed top-k evidence), so their rows compare like with like."""
    def make(rag, *, k: int, store: str | None, max_new_tokens: int) -> AnswerFn:
        from rag.modes import ModeContext, run_mode

        ctx = ModeContext.from_rag(rag, k=k, store=store, answer_tokens=max_new_tokens)
        return lambda q: run_mode(name, q, ctx)
    return make


def _controlled(spec: str) -> Callable[..., AnswerFn]:
    """The controller picks the mode per question (rag.control.load_controller); its decision joins the trace."""
    def make(rag, *, k: int, store: str | None, max_new_tokens: int) -> AnswerFn:
        from dataclasses import replace

        from rag.control.load import load_controller
        from rag.modes import ModeContext, run_mode

        ctl = load_controller(spec, rag=rag)
        ctx = ModeContext.from_rag(rag, k=k, store=store, answer_tokens=max_new_tokens,
                                   should_stop=getattr(ctl, "should_stop", None))  # a probe stops iterative early

        def answer(q: str):
            d = ctl.choose(q)
            r = run_mode(d.mode, q, ctx)
            return replace(r, trace=[ControllerStep(spec, d.mode, d.propensity, d.scores), *r.trace])
        return answer
    return make


# Modes the runner drives itself; any other mode name is passed to `RAG.ask(mode=...)` when the SDK takes one.
MODES: dict[str, Callable[..., AnswerFn]] = {"one_shot": _search_mode("one_shot"), "none": _search_mode("none"),
                                             "iterative": _search_mode("iterative"), "chain": _search_mode("chain"),
                                             "bandit": _controlled("bandit"), "probe": _controlled("probe")}


def _answer_fn(rag, mode: str, *, k: int, store: str | None, max_new_tokens: int) -> AnswerFn:
    if mode in MODES:
        return MODES[mode](rag, k=k, store=store, max_new_tokens=max_new_tokens)
    if "mode" in inspect.signature(rag.ask).parameters:
        return lambda q: rag.ask(q, k=k, store=store, max_new_tokens=max_new_tokens, mode=mode)
    raise ConfigError(f"unknown mode {mode!r}: this build answers with {', '.join(MODES)}")


def _retrieval_calls(ans: Any) -> int:
    calls = getattr(ans, "retrieval_calls", None)
    if not isinstance(calls, int) or isinstance(calls, bool):
        raise ConfigError(f"an answer function returned {type(ans).__name__} without an int .retrieval_calls: "
                          "return rag.sdk.Answer or rag.modes.ModeResult (or an object with their fields)")
    return calls


def _hit_dict(h: Hit | dict[str, Any]) -> dict[str, Any]:
    """A passage of an answer as a prediction records it (Hit.to_dict); a dict (an AnswerFn's own) as given."""
    d = h.to_dict() if isinstance(h, Hit) else dict(h)
    d["doc_id"] = d.get("doc_id") or doc_id_of(d["id"])
    return d




def _record(ex: QAExample, ans: Any, seconds: float, k: int) -> dict[str, Any]:
    passages = [_hit_dict(h) for h in (getattr(ans, "passages", None) or [])]
    prediction = str(getattr(ans, "answer", ""))
    scores = score_example(prediction, ex.answers, passages, supporting_ids=ex.supporting_ids,
                           provenance_pages=ex.provenance_pages, k=k)
    return {
        "id": ex.id, "dataset": ex.dataset, "question": ex.question, "answers": list(ex.answers),
        "supporting_ids": list(ex.supporting_ids), "provenance_pages": list(ex.provenance_pages),
        "prediction": prediction, "mode": getattr(ans, "mode", ""),
        "citations": list(getattr(ans, "citations", []) or []),
        "citation_source": getattr(ans, "citation_source", ""),
        "passages": passages, "retrieval_calls": _retrieval_calls(ans),
        "n_prompt_tokens": int(getattr(ans, "n_prompt_tokens", 0) or 0),
        "n_new_tokens": int(getattr(ans, "n_new_tokens", 0) or 0),
        "timings": dict(getattr(ans, "timings", {}) or {}), "seconds": seconds,
        "raw_text": getattr(ans, "raw_text", ""), "trace": trace_dicts(getattr(ans, "trace", None) or []),
        "scores": scores.to_dict(),
    }


def metrics_from_records(records: Sequence[dict[str, Any]], k: int) -> dict[str, Any]:
    """metrics.json contents: answer and provenance means plus cost per question; with questions from several
    QA sets (a mix, eval.mixed), the same per set under "by_dataset"."""
    out = _metrics(records, k)
    sets = sorted({r.get("dataset", "") for r in records} - {""})
    if len(sets) > 1:
        out["by_dataset"] = {d: _metrics([r for r in records if r.get("dataset") == d], k) for d in sets}
    return out


def _metrics(records: Sequence[dict[str, Any]], k: int) -> dict[str, Any]:
    n = len(records)
    agg = aggregate([QAScores(**r["scores"]) for r in records])

    def per_q(key: Callable[[dict], float]) -> float | None:
        return sum(key(r) for r in records) / n if n else None

    return {
        "em": agg["em"], "f1": agg["f1"], "accuracy": agg["accuracy"],
        "r_precision": agg["r_precision"], "r_precision_passage": agg["r_precision_passage"],
        "support_recall@k": agg["support_recall"], "k": k,
        "kilt_em": agg["kilt_em"], "kilt_f1": agg["kilt_f1"],
        "retrieval_calls_per_q": per_q(lambda r: r["retrieval_calls"]),
        "tokens_per_q": per_q(lambda r: r["n_new_tokens"]),
        "prompt_tokens_per_q": per_q(lambda r: r["n_prompt_tokens"]),
        "seconds_per_q": per_q(lambda r: r["seconds"]),
        "mode_counts": dict(Counter(r["mode"] for r in records)),
        "n": n,
    }


def _check_resume(out_dir: Path, config: dict[str, Any]) -> None:
    path = out_dir / CONFIG
    if not path.exists():
        return
    old = json.loads(path.read_text(encoding="utf-8"))
    diff = [key for key in _RESUME_KEYS if old.get(key) != config.get(key)]
    if diff:
        raise ConfigError(f"{out_dir} holds a run with different {', '.join(diff)} "
                          f"({', '.join(f'{d}={old.get(d)!r}' for d in diff)}): use another --out or delete it")


def run_qa(examples: Sequence[QAExample], answer_fn: AnswerFn, out_dir: str | Path, *,
           config: dict[str, Any] | None = None, k: int = 4, progress: bool = True,
           report: bool = True) -> dict[str, Any]:
    """Answer every example not yet in `out_dir`'s predictions, then write metrics.json (and the report)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {**(config or {}), "k": k, "n_examples": len(examples)}
    _check_resume(out_dir, config)
    (out_dir / CONFIG).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    pred_path = out_dir / PREDICTIONS
    wanted = {ex.id for ex in examples}
    done = {r["id"] for r in read_predictions(pred_path, repair=True)}
    todo = [ex for ex in examples if ex.id not in done]
    if done:
        log.info("%s: resuming, %d of %d questions already answered", out_dir, len(done & wanted), len(examples))
    from tqdm.auto import tqdm

    with open(pred_path, "a", encoding="utf-8") as f, tqdm(total=len(examples), initial=len(done & wanted),
                                                          disable=not progress, desc="qa", unit="q") as bar:
        for ex in todo:
            t = time.perf_counter()
            ans = answer_fn(ex.question)
            f.write(json.dumps(_record(ex, ans, time.perf_counter() - t, k), ensure_ascii=False) + "\n")
            f.flush()
            bar.update(1)
    records = [r for r in read_predictions(pred_path) if r["id"] in wanted]
    metrics = metrics_from_records(records, k)
    (out_dir / METRICS).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    if report:

        write_report([out_dir], out_dir)
    return metrics


def run_qa_eval(data: str | Path, index: str | Path, out_dir: str | Path, mode: str = "one_shot",
                limit: int | None = None, generator: str = "qwen-0.5b", k: int = 4, *, store: str | None = None,
                threads: int | None = 1, max_new_tokens: int = 48, format: QAFormat = "auto",
                progress: bool = True, answer_fn: AnswerFn | None = None) -> dict[str, Any]:
    """`adarag eval qa`: load `data`, answer with `RAG.open(index)` in `mode`, score, write the run directory.

    Returns the metrics dict (also in `out_dir/metrics.json`). `answer_fn` replaces the SDK (tests).
    """
    positive_int(k, "k")
    examples = load_qa(data, format=format, limit=limit)
    config = {"data": portable_path(data), "index": portable_path(index), "mode": mode,
              "generator": generator, "store": store, "max_new_tokens": max_new_tokens, "format": format,
              "limit": limit, "threads": threads}
    if answer_fn is not None:
        return run_qa(examples, answer_fn, out_dir, config=config, k=k, progress=progress)
    if mode not in MODES and mode not in ("none", "iterative", "chain", "bandit", "probe", "auto"):
        raise ConfigError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    from rag import RAG

    with RAG.open(index, generator=generator, threads=threads) as rag:
        fn = _answer_fn(rag, mode, k=k, store=store, max_new_tokens=max_new_tokens)
        config["store"] = store or rag.retriever.default_store
        if mode != "none":
            _ = rag.generator  # load (and on first use convert) the model now, outside the per-question timings
        return run_qa(examples, fn, out_dir, config=config, k=k, progress=progress)
