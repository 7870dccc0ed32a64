"""The metrics a BEIR run reports and the files of its run directory: what eval.beir writes and
eval.beir_report reads, apart from both so neither imports the other."""
from __future__ import annotations

__all__ = ["METRICS", "RUN_FILE", "METRICS_FILE", "PER_QUERY_FILE"]

METRICS = ("ndcg@10", "recall@100", "mrr@10", "map")
RUN_FILE = "run.trec"
METRICS_FILE = "metrics.json"
PER_QUERY_FILE = "per_query.json"
