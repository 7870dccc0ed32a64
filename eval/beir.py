"""BEIR-style retrieval evaluation: standard dataset layout in, TREC run + metrics + report out, and a 2CR check.

Layout read (the one BEIR datasets ship: scifact, nfcorpus, hotpotqa, ...)::

    DATA/corpus.jsonl        {"_id", "title", "text"} per line (read by indexers.ingest.read_corpus)
    DATA/queries.jsonl       {"_id", "text"} per line
    DATA/qrels/SPLIT.tsv     query-id <TAB> corpus-id <TAB> score, with a header line

A run directory gets `run.trec` (TREC format, documents ranked by MaxP over their passages), `metrics.json`,
`per_query.json`, `report.md` and a self-contained `report.html`.

Metrics come from pytrec_eval (trec_eval's own code), so `trec_eval -m ndcg_cut.10 -m recall.100 -m map qrels
run.trec` on the written files gives the same numbers: nDCG@10 = `ndcg_cut_10`, Recall@100 = `recall_100`,
MAP = `map` over the whole run (depth k), MRR@10 = `recip_rank` over each query's top 10. As in trec_eval,
documents are ordered by score (ties by document id, descending), and every judged query counts in the mean:
one the run does not cover scores 0.
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from indexers.errors import ConfigError, CorpusError, missing, positive_int
from indexers.types import Document
from eval.beir_files import METRICS, METRICS_FILE, PER_QUERY_FILE, RUN_FILE
from eval.beir_report import write_beir_report
from eval.shared import portable_path, shared_dir

__all__ = [
    "METRICS", "CONFIGS", "RUN_FILE", "METRICS_FILE", "PER_QUERY_FILE", "TWO_CR_YAML",
    "BeirData", "Grade", "load_corpus", "load_queries", "load_qrels", "load_beir",
    "evaluate_run", "read_trec_run", "write_trec_run", "run_beir", "check_2cr", "grade", "format_grades",
]

log = logging.getLogger(__name__)

CONFIGS = ("bm25", "dense", "ngram", "fused", "fused+rerank")
"""Documented configurations; any store spec `retrievers.search.Retriever` accepts (e.g. bm25+ngram) also runs."""
TWO_CR_YAML = Path(__file__).resolve().parent / "2cr" / "beir.yaml"
OKISH_TOL = 5e-4

_TREC_MEASURES = {"ndcg@10": "ndcg_cut_10", "recall@100": "recall_100", "map": "map"}


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class BeirData:
    """Queries (id -> text, only those judged in the split, in qrels order) and qrels (qid -> docid -> grade)."""

    root: Path
    split: str
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_corpus(data_dir: str | Path) -> list[Document]:
    """The documents of `DATA/corpus.jsonl` (errors name the file and line: see indexers.ingest.read_corpus)."""
    from indexers.ingest import read_corpus

    path = Path(data_dir) / "corpus.jsonl"
    if not path.exists():
        raise CorpusError(f"{path} does not exist: a BEIR dataset folder holds corpus.jsonl, queries.jsonl "
                          "and qrels/SPLIT.tsv")
    return list(read_corpus(path))


def load_queries(path: str | Path) -> dict[str, str]:
    """`queries.jsonl` -> {query id: text}; ids unique, text non-blank."""
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path} does not exist: a BEIR dataset needs queries.jsonl with one "
                          "{\"_id\": ..., \"text\": ...} object per line")
    out: dict[str, str] = {}
    first: dict[str, int] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}:{lineno}"
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw.decode("utf-8-sig" if lineno == 1 else "utf-8"))
            except UnicodeDecodeError as e:
                raise CorpusError(f"{where}: invalid UTF-8 at byte column {e.start + 1}: re-encode the file as "
                                  "UTF-8") from None
            except json.JSONDecodeError as e:
                raise CorpusError(f"{where}: malformed JSON ({e.msg} at column {e.colno}): each line must be "
                                  "one object like {\"_id\": \"q1\", \"text\": \"...\"}") from None
            if not isinstance(rec, dict):
                raise CorpusError(f"{where}: expected a JSON object, got a JSON {type(rec).__name__}")
            qid = rec.get("_id", rec.get("id"))
            if isinstance(qid, int) and not isinstance(qid, bool):
                qid = str(qid)
            if not isinstance(qid, str) or not qid:
                raise CorpusError(f"{where}: query has no id: add a non-empty \"_id\" string")
            text = rec.get("text")
            if not isinstance(text, str) or not text.strip():
                raise CorpusError(f"{where}: query {qid!r} has no text: add a non-empty \"text\" string")
            if qid in first:
                raise CorpusError(f"{where}: duplicate query id {qid!r} (first at line {first[qid]}): "
                                  "query ids must be unique")
            first[qid] = lineno
            out[qid] = text
    if not out:
        raise CorpusError(f"{path} holds no queries")
    return out


def load_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """`qrels/SPLIT.tsv` -> {query id: {doc id: grade}}.

    BEIR's three columns (query-id, corpus-id, score) with a header line, tab-separated; the four-column TREC
    qrels form (qid, iteration, docid, grade; any whitespace) is read too. Grades are integers (0 = judged
    not relevant); a pair given twice is an error.
    """
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path} does not exist: BEIR relevance judgments live in DATA/qrels/SPLIT.tsv "
                          "(query-id, corpus-id, score; tab-separated, with a header)")
    qrels: dict[str, dict[str, int]] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").strip()
            except UnicodeDecodeError as e:
                raise CorpusError(f"{where}: invalid UTF-8 at byte column {e.start + 1}") from None
            if not line:
                continue
            cols = line.split("\t") if "\t" in line else line.split()
            if lineno == 1 and (cols[:2] == ["query-id", "corpus-id"] or not _is_int(cols[-1])):
                continue  # header
            if len(cols) == 4:
                qid, _, did, grade = cols
            elif len(cols) == 3:
                qid, did, grade = cols
            else:
                raise CorpusError(f"{where}: expected 3 tab-separated columns (query-id, corpus-id, score), "
                                  f"got {len(cols)}: {line[:80]!r}")
            if not _is_int(grade):
                raise CorpusError(f"{where}: relevance score {grade!r} is not an integer")
            docs = qrels.setdefault(qid.strip(), {})
            did = did.strip()
            if did in docs:
                raise CorpusError(f"{where}: pair ({qid}, {did}) is judged twice: keep one line")
            docs[did] = int(grade)
    if not qrels:
        raise CorpusError(f"{path} holds no judgments")
    return qrels


def _is_int(s: str) -> bool:
    try:
        int(s)
    except ValueError:
        return False
    return True


def load_beir(data_dir: str | Path, split: str = "test") -> BeirData:
    """Queries and qrels of one split; every judged query must have text in queries.jsonl."""
    root = Path(data_dir)
    if not root.is_dir():
        raise CorpusError(f"BEIR data folder {str(root)!r} does not exist")
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        have = sorted(p.stem for p in (root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []
        raise CorpusError(f"{qrels_path} does not exist; splits here: {', '.join(have) or 'none'}")
    queries = load_queries(root / "queries.jsonl")
    qrels = load_qrels(qrels_path)
    unknown = [q for q in qrels if q not in queries]
    if unknown:
        raise CorpusError(f"{qrels_path}: {len(unknown)} judged query id(s) are not in {root / 'queries.jsonl'} "
                          f"(first: {unknown[0]!r}): the qrels and queries files do not belong together")
    return BeirData(root, split, {q: queries[q] for q in qrels}, qrels)


# --------------------------------------------------------------------------- run files and metrics


def write_trec_run(run: Mapping[str, Sequence[tuple[str, float]]], path: str | Path, tag: str) -> Path:
    """Write `qid Q0 docid rank score tag` lines, each query's documents in the order given (best first)."""
    path = Path(path)
    with open(path, "w", encoding="utf-8") as f:
        for qid, docs in run.items():
            for rank, (did, score) in enumerate(docs, 1):
                f.write(f"{qid} Q0 {did} {rank} {score:.6f} {tag}\n")
    return path


def read_trec_run(path: str | Path) -> dict[str, dict[str, float]]:
    """A TREC run file -> {qid: {docid: score}}."""
    run: dict[str, dict[str, float]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            cols = line.split()
            if not cols:
                continue
            if len(cols) != 6:
                raise CorpusError(f"{path}:{lineno}: a TREC run line has 6 columns (qid Q0 docid rank score tag), "
                                  f"got {len(cols)}")
            run.setdefault(cols[0], {})[cols[2]] = float(cols[4])
    return run


def _pytrec_eval():
    try:
        import pytrec_eval
    except ImportError as e:
        raise missing("eval", "pytrec_eval") from e
    return pytrec_eval


def evaluate_run(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]]
                 ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(mean over every judged query, per query) of nDCG@10, Recall@100, MRR@10 and MAP, by pytrec_eval.

    `run` is {qid: {docid: score}}; as in trec_eval a query's documents are ranked by score, ties by docid.
    """
    pytrec_eval = _pytrec_eval()
    qrels = {q: {d: int(g) for d, g in docs.items()} for q, docs in qrels.items()}
    run = {q: {d: float(s) for d, s in docs.items()} for q, docs in run.items() if q in qrels and docs}
    full = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100", "map"}).evaluate(run)
    top10 = {q: dict(sorted(docs.items(), key=lambda x: (-x[1], _neg(x[0])))[:10]) for q, docs in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    per_query: dict[str, dict[str, float]] = {}
    for q in qrels:  # a judged query the run misses scores 0, as trec_eval -c does
        m = full.get(q, {})
        per_query[q] = {name: float(m.get(key, 0.0)) for name, key in _TREC_MEASURES.items()}
        per_query[q]["mrr@10"] = float(rr.get(q, {}).get("recip_rank", 0.0))
    n = len(per_query)
    means = {name: (math.fsum(v[name] for v in per_query.values()) / n if n else 0.0) for name in METRICS}
    return means, per_query


class _neg(str):
    """Sort key inverting string order (trec_eval breaks score ties by docid, descending)."""

    def __lt__(self, other: str) -> bool:  # type: ignore[override]
        return str.__gt__(self, other)


# --------------------------------------------------------------------------- running


def _check_config(config: object) -> str:
    if not isinstance(config, str) or not config:
        raise ConfigError(f"config must be a non-empty str ({', '.join(CONFIGS)}), got {config!r}")
    if config == "rerank":
        raise ConfigError("config 'rerank' names no first stage: use e.g. fused+rerank or bm25+rerank")
    return config


def _split_rerank(config: str, rerank: str | None) -> tuple[str, str | None]:
    """`fused+rerank` -> ("fused", spec); the spec is `rerank`, else DEFAULT_RERANKER; `rerank` alone also works."""
    if config.endswith("+rerank"):
        from retrievers.rerank import DEFAULT_RERANKER

        return config[: -len("+rerank")], rerank or DEFAULT_RERANKER
    return config, rerank if rerank not in (None, "none") else None


def run_beir(data_dir: str | Path, index_dir: str | Path, config: str, out_dir: str | Path, *,
             split: str = "test", k: int = 100, passage_depth: int | None = None, batch_size: int = 64,
             threads: int | None = None, report: bool = True, rerank: str | None = None,
             rerank_depth: int = 20) -> dict[str, Any]:
    """Rank every judged query of `split` with `config`, write run/metrics/report into `out_dir`.

    Passages are retrieved `passage_depth` deep (default 2*k), collapsed to documents by their best passage
    (MaxP), and the top `k` documents go in the run. Returns {"ndcg@10", "recall@100", "mrr@10", "map",
    "n_queries"}; `metrics.json` holds those plus the settings and timings. `X+rerank` (or `rerank=SPEC`)
    re-scores each query's top `rerank_depth` passages with `retrievers.rerank.load_reranker(SPEC)` first.
    """
    from indexers.index import open_index
    from indexers.ingest import doc_id_of, passages_to_documents
    from retrievers.search import Retriever

    config = _check_config(config)
    stores, rerank_spec = _split_rerank(config, rerank)
    reranker = None
    if rerank_spec is not None:
        from retrievers.rerank import load_reranker

        reranker = load_reranker(rerank_spec, threads=threads)
    positive_int(k, "k")
    depth = passage_depth or 2 * k
    if depth < k:
        raise ConfigError(f"passage_depth ({depth}) must be >= k ({k})")
    _pytrec_eval()  # fail before the (possibly long) retrieval when the [eval] extra is missing
    data = load_beir(data_dir, split)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open_index(index_dir) as index:
        retriever = Retriever(index, threads=threads)
        retriever.stores_of(stores)  # unknown store / store missing from the index -> ConfigError now
        index_docs = {doc_id_of(str(p)) for p in index.ids}
        judged = {d for docs in data.qrels.values() for d, g in docs.items() if g > 0}
        absent = judged - index_docs
        if judged and len(absent) == len(judged):
            raise ConfigError(f"none of the {len(judged)} relevant documents of {data.root} is in index "
                              f"{index_dir}: build the index from {data.root / 'corpus.jsonl'}")
        if absent:
            log.warning("%d of %d relevant documents are not in the index", len(absent), len(judged))
        qids = list(data.queries)
        run: dict[str, list[tuple[str, float]]] = {}
        t_ret = time.perf_counter()
        t_rerank, n_reranked = 0.0, 0
        for start in range(0, len(qids), batch_size):
            batch = qids[start:start + batch_size]
            for qid, (rows, scores) in zip(batch, retriever.rows_batch([data.queries[q] for q in batch],
                                                                       stores, depth)):
                hits = [(str(index.ids[r]), float(s)) for r, s in zip(rows.tolist(), scores.tolist())]
                if reranker is not None:
                    t = time.perf_counter()
                    ranked = reranker.rerank(data.queries[qid], index.hits(rows.tolist(), scores.tolist()),
                                             rerank_depth)
                    hits = [(h.id, h.score) for h in ranked]
                    t_rerank += time.perf_counter() - t
                    n_reranked += min(rerank_depth, len(rows))
                run[qid] = passages_to_documents(hits)[:k]
        t_ret = time.perf_counter() - t_ret
        manifest_stores = list(index.stores)
    write_trec_run(run, out / RUN_FILE, tag=f"adarag-{config}")
    # evaluate exactly what the run file says (scores as written), so trec_eval on the file agrees
    means, per_query = evaluate_run(data.qrels, read_trec_run(out / RUN_FILE))
    result: dict[str, Any] = {m: means[m] for m in METRICS}
    result["n_queries"] = len(per_query)
    meta = {
        "config": config, "data": portable_path(data_dir), "split": split,
        "index": portable_path(index_dir), "index_stores": manifest_stores, "k": k,
        "passage_depth": depth, "relevant_docs_missing_from_index": len(absent),
        "retrieval_seconds": round(t_ret, 3), "queries_per_s": round(len(qids) / t_ret, 2) if t_ret > 0 else None,
        "seconds": round(time.perf_counter() - t0, 3), "metrics_library": "pytrec_eval",
    }
    if reranker is not None:
        meta.update({"reranker": reranker.name, "rerank_depth": rerank_depth, "rerank_seconds": round(t_rerank, 3),
                     "reranked_passages_per_s": round(n_reranked / t_rerank, 2) if t_rerank > 0 else None})
    (out / METRICS_FILE).write_text(json.dumps({**result, **meta}, indent=2) + "\n", encoding="utf-8")
    (out / PER_QUERY_FILE).write_text(json.dumps(per_query, indent=1) + "\n", encoding="utf-8")
    if report:
        write_beir_report([out], out)
    return result


# --------------------------------------------------------------------------- 2CR: expected scores


class Grade(NamedTuple):
    condition: str
    metric: str
    expected: float
    got: float
    grade: str  # OK | OKish | FAIL


def grade(expected: float, got: float, tol: float = OKISH_TOL) -> str:
    """OK when `got` rounds to `expected` at 4 d.p., OKish within `tol`, else FAIL (Pyserini's 2CR grades)."""
    if round(got, 4) == round(expected, 4):
        return "OK"
    return "OKish" if abs(got - expected) <= tol + 1e-12 else "FAIL"


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def _resolve_data(spec: str, data_root: str | Path | None) -> Path:
    """`${SHARED}/...` -> data_root, else the shared folder (eval.shared: ADARAG_SHARED or ../shared)."""
    if "${SHARED}" in spec:
        return Path(spec.replace("${SHARED}", str(Path(data_root) if data_root else shared_dir())))
    p = Path(spec)
    return p if p.is_absolute() else _repo_root() / p


def _write_bundled(name: str, out: Path) -> None:
    from eval.bundled_beir import BUNDLED

    if name not in BUNDLED:
        raise ConfigError(f"unknown bundled dataset {name!r}; valid: {', '.join(BUNDLED)}")
    BUNDLED[name](out)


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        import yaml
    except ImportError as e:
        raise missing("eval", "yaml") from e
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("conditions"), list):
        raise ConfigError(f"{path}: expected a mapping with a 'conditions' list")
    return doc


def check_2cr(yaml_path: str | Path | None = None, only: Sequence[str] | str | None = None, *,
              data_root: str | Path | None = None, work_dir: str | Path | None = None,
              index_dirs: Mapping[str, str | Path] | None = None, include_slow: bool = True) -> list[Grade]:
    """Reproduce the conditions of a 2CR YAML and grade every expected metric.

    For each condition (or those named in `only`): build its index from the dataset's corpus.jsonl into
    `work_dir` (a temporary folder by default; `index_dirs[condition]` reuses a prebuilt one instead), run
    `run_beir` with the condition's config, and compare with the expected scores.
    """
    import tempfile

    from indexers.dense import DenseParams
    from indexers.index import BuildParams, build_index
    from indexers.ingest import read_corpus

    path = Path(yaml_path) if yaml_path else TWO_CR_YAML
    doc = _load_yaml(path)
    datasets = doc.get("datasets") or {}
    conditions = doc["conditions"]
    names = [c.get("name") for c in conditions]
    if isinstance(only, str):
        only = [only]
    if only is not None:
        unknown = [o for o in only if o not in names]
        if unknown:
            raise ConfigError(f"{path}: no condition {unknown[0]!r}; conditions: {', '.join(map(str, names))}")
    index_dirs = dict(index_dirs or {})
    out: list[Grade] = []
    with tempfile.TemporaryDirectory(prefix="adarag-2cr-") as tmp:
        work = Path(work_dir) if work_dir else Path(tmp)
        built: dict[tuple, Path] = {}
        for cond in conditions:
            name = cond["name"]
            if only is not None and name not in only:
                continue
            if only is None and cond.get("slow") and not include_slow:
                continue
            ds_name = cond["dataset"]
            if ds_name not in datasets:
                raise ConfigError(f"{path}: condition {name!r} names unknown dataset {ds_name!r}")
            ds = datasets[ds_name]
            if ds.get("bundled"):  # written from the pip data packages (eval.bundled_beir), once per work dir
                data = work / f"data-{ds_name}"
                if not (data / "corpus.jsonl").exists():
                    _write_bundled(ds["bundled"], data)
            else:
                data = _resolve_data(ds["data"], data_root)
            ix = cond.get("index") or {}
            stores = tuple(ix.get("stores", ("bm25",)))
            embedder = ix.get("embedder", DenseParams().embedder)
            if name in index_dirs:
                index_dir = Path(index_dirs[name])
            else:
                key = (str(data), stores, embedder)
                if key not in built:
                    index_dir = work / f"index-{ds_name}-{'-'.join(stores)}"
                    params = BuildParams(stores=stores, dense=DenseParams(embedder=embedder))
                    build_index(read_corpus(data / "corpus.jsonl"), index_dir, params, rebuild=True, progress=False)
                    built[key] = index_dir
                index_dir = built[key]
            got = run_beir(data, index_dir, cond["config"], work / f"run-{name}", split=ds.get("split", "test"),
                           k=int(cond.get("k", 100)), report=False, rerank=cond.get("rerank"))
            for metric, expected in cond["scores"].items():
                out.append(Grade(name, metric, float(expected), float(got[metric]), grade(expected, got[metric])))
    return out


def format_grades(grades: Sequence[Grade]) -> str:
    """A fixed-width table of 2CR grades, one line per (condition, metric)."""
    w = max([len("condition"), *(len(g.condition) for g in grades)])
    lines = [f"{'condition':<{w}} {'metric':<11} {'expected':>9} {'got':>9}  grade"]
    lines += [f"{g.condition:<{w}} {g.metric:<11} {g.expected:>9.4f} {g.got:>9.4f}  {g.grade}" for g in grades]
    return "\n".join(lines)
