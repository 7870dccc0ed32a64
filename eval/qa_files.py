"""The files of a QA run directory (config, predictions, metrics) and the predictions reader: what the runner
writes and the report reads, apart from both so neither imports the other."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from indexers.errors import CorpusError

__all__ = ["PREDICTIONS", "CONFIG", "METRICS", "read_predictions"]

log = logging.getLogger(__name__)

PREDICTIONS, CONFIG, METRICS = "predictions.jsonl", "config.json", "metrics.json"


def read_predictions(path: str | Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """Records of a predictions JSONL. A torn last line (a killed run) is skipped, and cut off with `repair`."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    records, good_end, offset = [], 0, 0
    lines = data.split(b"\n")
    for i, raw in enumerate(lines):
        end = offset + len(raw) + (1 if i < len(lines) - 1 else 0)
        if raw.strip():
            try:
                records.append(json.loads(raw))
            except json.JSONDecodeError:
                if i < len(lines) - 1:
                    raise CorpusError(f"{path}:{i + 1}: malformed prediction line in the middle of the file: "
                                      "delete the run directory and start again") from None
                log.warning("%s: dropping a torn last line (the previous run was interrupted)", path)
                break
        good_end = offset = end
    if repair and good_end < len(data):
        with open(path, "r+b") as f:
            f.truncate(good_end)
    return records
