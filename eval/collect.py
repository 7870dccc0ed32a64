"""`adarag controller collect`: run every search mode on a QA set and cache the per-arm outcomes (resumable).

One JSONL line per question: id, question, answers, split (crc32 of the id: "train" or "heldout"), and per mode
the prediction, EM, F1, retrieval calls, tokens and seconds. The controller trains by replaying these lines.
Resuming skips ids already in the file (a torn last line from a kill is dropped); `--shard i/n` lets n processes
share a set (each writes its own file).
"""
from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path
from typing import Any

from eval.qa_data import load_qa
from eval.qa_metrics import exact_match, f1_score
from eval.qa_runner import read_predictions
from indexers.errors import ConfigError
from eval.shared import portable_path

__all__ = ["collect", "split_of"]

log = logging.getLogger(__name__)


def split_of(qid: str, heldout_share: float = 0.3) -> str:
    """Deterministic split by crc32 of the question id, so every tool agrees without a split file."""
    return "heldout" if zlib.crc32(qid.encode("utf-8")) % 1000 < heldout_share * 1000 else "train"


def collect(data: str | Path, index: str | Path, out: str | Path, *, generator: str = "qwen-0.5b",
            limit: int | None = None, shard: tuple[int, int] = (0, 1), threads: int | None = 1, k: int = 4,
            max_steps: int = 3, step_tokens: int = 24, answer_tokens: int = 32, progress: bool = True,
            batch: int = 0) -> dict[str, Any]:
    """Answer each question with every mode (rag.modes) and append one outcome line per question.
    `batch` > 0 takes the questions `batch` at a time and decodes the `none`/`one_shot` answers of a group
    together (rag.modes.run_mode_batch; iterative/chain stay per question); a kill loses at most one group."""
    from rag.modes import MODE_NAMES, ModeContext, run_mode_batch
    from rag.sdk import RAG

    i, n = shard
    if not (0 <= i < n):
        raise ConfigError(f"shard must be i/n with 0 <= i < n, got {i}/{n}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 0:
        raise ConfigError(f"batch must be an int >= 0 (0 = one question at a time), got {batch!r}")
    examples = [ex for ex in load_qa(data, limit=limit) if zlib.crc32(ex.id.encode()) % n == i]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"outcomes-{i}of{n}.jsonl"
    done = {r["id"] for r in read_predictions(path, repair=True)}
    todo = [ex for ex in examples if ex.id not in done]
    config = {"data": portable_path(data), "index": portable_path(index), "generator": generator,
              "k": k, "max_steps": max_steps, "step_tokens": step_tokens, "answer_tokens": answer_tokens}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    from tqdm.auto import tqdm

    with RAG.open(index, generator=generator, threads=threads) as rag, open(path, "a", encoding="utf-8") as f:
        ctx = ModeContext.from_rag(rag, k=k, max_steps=max_steps, step_tokens=step_tokens,
                                   answer_tokens=answer_tokens, batch_size=batch)
        bar = tqdm(total=len(todo), disable=not progress, desc="collect", unit="q")
        for s in range(0, len(todo), max(1, batch)):
            group = todo[s:s + max(1, batch)]
            results = {mode: run_mode_batch(mode, [ex.question for ex in group], ctx) for mode in MODE_NAMES}
            for j, ex in enumerate(group):
                f.write(json.dumps(_record(ex, {m: results[m][j] for m in MODE_NAMES}), ensure_ascii=False) + "\n")
            f.flush()
            bar.update(len(group))
        bar.close()
    return {"cache": str(out), "file": str(path), "n": len(done) + len(todo), "added": len(todo)}


def _record(ex: Any, results: dict[str, Any]) -> dict[str, Any]:
    """One cache line: the question, its split and each mode's outcome (prediction, EM, F1, costs, passages)."""
    arms = {mode: {"prediction": r.answer, "em": exact_match(r.answer, ex.answers),
                   "f1": f1_score(r.answer, ex.answers), "retrieval_calls": r.retrieval_calls,
                   "n_prompt_tokens": r.n_prompt_tokens, "n_new_tokens": r.n_new_tokens,
                   "seconds": r.seconds, "passages": [h.id for h in r.passages]} for mode, r in results.items()}
    return {"id": ex.id, "dataset": ex.dataset, "question": ex.question, "answers": list(ex.answers),
            "split": split_of(ex.id), "arms": arms}
