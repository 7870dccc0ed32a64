"""`adarag generate`: complete a JSONL file of prompts or grounded questions with exact speculative decoding."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexers.errors import ConfigError

__all__ = ["PromptItem", "read_prompts", "generate_file"]


@dataclass(frozen=True)
class PromptItem:
    """One line: a raw prompt, or a question with the passages to answer it from (the copy-draft source)."""

    id: str
    messages: Any  # str or chat messages
    passages: tuple[str, ...]


def _passage(p: Any, where: str) -> tuple[str, str]:
    if isinstance(p, str):
        return "", p
    if isinstance(p, dict) and isinstance(p.get("text"), str):
        return str(p.get("title", "")), p["text"]
    raise ConfigError(f"{where}: each passage must be a string or {{'title', 'text'}}, got {p!r:.80}")


def read_prompts(path: str | Path) -> list[PromptItem]:
    """Lines of {"id", "prompt"} or {"id", "question", "passages": [...]}; bad lines raise ConfigError at file:line."""
    from rag.prompts import grounded_messages

    items: list[PromptItem] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ConfigError(f"{where}: not JSON ({e.msg}): one object per line") from None
            if not isinstance(rec, dict) or "id" not in rec:
                raise ConfigError(f"{where}: needs an \"id\" and a \"prompt\" or \"question\"")
            pid = str(rec["id"])
            if pid in seen:
                raise ConfigError(f"{where}: duplicate id {pid!r}")
            seen.add(pid)
            if isinstance(rec.get("prompt"), str) and rec["prompt"].strip():
                items.append(PromptItem(pid, rec["prompt"], ()))
            elif isinstance(rec.get("question"), str) and rec["question"].strip():
                raw = rec.get("passages", [])
                if not isinstance(raw, list):
                    raise ConfigError(f"{where}: \"passages\" must be a list")
                ps = [_passage(p, where) for p in raw]
                msgs = grounded_messages(rec["question"], [(str(i), t, x) for i, (t, x) in enumerate(ps, 1)])
                items.append(PromptItem(pid, msgs, tuple(x for _, x in ps)))
            else:
                raise ConfigError(f"{where}: needs a non-empty \"prompt\" or \"question\" string")
    if not items:
        raise ConfigError(f"{path} has no prompts: write one JSON object per line")
    return items


def generate_file(path: str | Path, *, generator: str = "qwen-1.5b", draft: str | None = None,
                  max_new_tokens: int = 64, threads: int | None = None) -> dict[str, Any]:
    """Run every prompt; {"outputs": [{"id", "text"}], "tokens", "seconds", "tokens_per_s", "target_forwards",
    "mean_accepted", "acceptance", "draft"} with totals over all prompts."""
    from rag.generator import DEFAULT_DRAFT, DRAFTS, Generator

    draft = draft or DEFAULT_DRAFT
    if draft not in DRAFTS:
        raise ConfigError(f"unknown draft source {draft!r}: choose one of {', '.join(DRAFTS)}")
    items = read_prompts(path)
    gen = Generator.load(generator, threads=threads)
    outputs, tokens, forwards, seconds = [], 0, 0, 0.0
    proposed: dict[str, int] = {}
    accepted: dict[str, int] = {}
    accepted_sum, decode_forwards = 0.0, 0
    started = time.perf_counter()
    for item in items:
        g = gen.generate(item.messages, max_new_tokens, draft=draft, passages=item.passages)
        s = g.stats
        outputs.append({"id": item.id, "text": g.text})
        tokens += s.tokens
        forwards += s.target_forwards
        seconds += s.seconds
        accepted_sum += s.mean_accepted * max(s.target_forwards - 1, 0)  # tokens per decoding forward, weighted
        decode_forwards += max(s.target_forwards - 1, 0)
        for k, v in s.proposed.items():
            proposed[k] = proposed.get(k, 0) + v
        for k, v in s.accepted.items():
            accepted[k] = accepted.get(k, 0) + v
    return {"outputs": outputs, "tokens": tokens, "seconds": round(seconds, 3),
            "tokens_per_s": round(tokens / seconds, 3) if seconds else 0.0, "target_forwards": forwards,
            "mean_accepted": round(accepted_sum / decode_forwards, 4) if decode_forwards else 1.0,
            "acceptance": {k: round(accepted.get(k, 0) / v, 4) for k, v in proposed.items() if v},
            "draft": draft, "generator": generator, "wall_seconds": round(time.perf_counter() - started, 3)}
