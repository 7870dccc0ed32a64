"""The `adarag` command line. With `--json`, the last line of stdout is one JSON object."""
from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from indexers.errors import ConfigError, RagError
from indexers.lock import DEFAULT_LOCK_WAIT
from indexers.shards.layout import is_sharded
from rag.options import MAX_THREADS

__all__ = ["main", "build_parser", "bounded_int", "MAX_COUNT"]

log = logging.getLogger("adarag")

MAX_COUNT = 100_000
"""The largest -k / depth / batch a flag takes: far above any use, and far below what overflows a C int or numpy."""
_LIMIT_MAX = 1_000_000_000  # questions or training pairs


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from `low` to `high`, else a usage error saying so (never an OverflowError
    from numpy later, nor Python's own message for a 5,000-digit number)."""

    def parse(text: str) -> int:
        value = None
        if len(text.strip()) <= 24:  # longer cannot be in range; int() of thousands of digits is its own error
            try:
                value = int(text)
            except ValueError:
                pass
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low:,} to {high:,}, got {text[:40]!r}")
        return value

    return parse


_COUNT = bounded_int(1, MAX_COUNT)
_THREADS = bounded_int(1, MAX_THREADS)
_TOKENS = bounded_int(1, 1_000_000)
_CHARS = bounded_int(1, 10_000_000)
_EPOCHS = bounded_int(1, 10_000)
_LIMIT = bounded_int(1, _LIMIT_MAX)


def _shard(text: str) -> tuple[int, int]:
    """`--shard I/N`: this process takes shard I of N (0 <= I < N)."""
    i, sep, n = text.partition("/")
    try:
        shard = (int(i), int(n) if sep else 1) if len(text) <= 24 else None
    except ValueError:
        shard = None
    if shard is None or not 0 <= shard[0] < shard[1] <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be I/N with 0 <= I < N, e.g. 0/4, got {text[:40]!r}")
    return shard


class _Parser(argparse.ArgumentParser):
    """A usage error raises ConfigError, so `main` answers it like any other bad input: exit 2, JSON with --json."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise ConfigError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _version() -> str:
    from indexers.artifact import adarag_version

    return adarag_version()


def _emit(obj: dict, as_json: bool, human: str) -> None:
    if as_json:
        print(json.dumps(obj, ensure_ascii=False))
    else:
        print(human)


def _seconds(text: str) -> float:
    """argparse type: a finite number of seconds >= 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds (a number >= 0), got {text!r}") from None
    if not 0 <= v < float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds (a number >= 0), got {text!r}")
    return v


def _check_corpus_outside(corpus: Sequence[Path], out: Path) -> None:
    """A corpus path that is the index folder or inside it would be read while the index rewrites it: refuse."""
    o = Path(out).expanduser().resolve()
    for c in corpus:
        r = Path(c).expanduser().resolve()
        if r == o or o in r.parents:
            raise ConfigError(f"corpus path {str(c)!r} is inside the index folder --out {str(out)!r}: keep the "
                              "corpus outside the index and give --out a new, empty or existing index folder")


def _cmd_index(a: argparse.Namespace) -> int:
    from indexers.dense import DenseParams
    from indexers.index import BuildParams, build_index
    from indexers.ingest import read_corpus

    _check_corpus_outside(a.corpus, a.out)
    stores = tuple(s.strip() for s in a.stores.split(",") if s.strip())
    params = BuildParams(stores=stores, passage_words=a.passage_words, passage_overlap=a.passage_overlap,
                         dense=DenseParams(embedder=a.embedder, index=a.dense_index), sql_url=a.sql)
    if a.shards is not None or is_sharded(a.out):
        return _index_sharded(a, params)
    if a.ray is not None:
        raise ConfigError("--ray builds a sharded index: add --shards N")
    rep = build_index(read_corpus(a.corpus), a.out, params, rebuild=a.rebuild, threads=a.threads,
                      progress=not a.json, lock_wait=a.wait)
    m = rep.manifest
    obj = {"index": str(a.out), "n_docs": m.n_docs, "n_passages": m.n_passages, "stores": m.stores,
           "added": rep.added, "updated": rep.updated, "unchanged": rep.unchanged, "embedded": rep.embedded,
           "seconds": {k: round(v, 3) for k, v in rep.seconds.items()}}
    _emit(obj, a.json, f"indexed {m.n_docs} documents ({m.n_passages} passages; {rep.added} added, "
                       f"{rep.updated} updated, {rep.unchanged} unchanged) into {a.out} "
                       f"[{', '.join(m.stores)}] in {rep.seconds['total']:.1f} s")
    return 0


def _index_sharded(a: argparse.Namespace, params) -> int:
    from indexers.ingest import read_corpus
    from indexers.shards import build_sharded, executor_for

    rep = build_sharded(read_corpus(a.corpus), a.out, a.shards, params, executor=executor_for(a.ray),
                        rebuild=a.rebuild, threads=a.threads, lock_wait=a.wait)
    m = rep.manifest
    obj = {"index": str(a.out), "n_docs": m.n_docs, "n_passages": m.n_passages, "stores": list(params.stores),
           "shards": m.n_shards, "added": rep.added, "updated": rep.updated, "unchanged": rep.unchanged,
           "embedded": rep.embedded, "seconds": {k: round(v, 3) for k, v in rep.seconds.items()}}
    _emit(obj, a.json, f"indexed {m.n_docs} documents ({m.n_passages} passages; {rep.added} added, {rep.updated} "
                       f"updated, {rep.unchanged} unchanged) into {m.n_shards} shards in {a.out} "
                       f"in {rep.seconds['total']:.1f} s")
    return 0


def _ray_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--ray", default=None, metavar="auto|local|ADDRESS",
                    help="serve a sharded index from Ray actors (the ray extra; default: in this process)")
    sp.add_argument("--replicas", type=bounded_int(1, 64), default=1, help="Ray actors per shard (with --ray)")


def _cmd_delete(a: argparse.Namespace) -> int:
    from indexers.index import build_index
    from indexers.index_dir import read_manifest

    ids = list(a.ids)
    if a.ids_file is not None:
        ids += [ln.strip() for ln in a.ids_file.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not ids:
        raise ConfigError("adarag delete: name the documents to delete (`adarag delete INDEX ID ...` or "
                          "--ids-file FILE with one id per line)")
    if is_sharded(a.index):
        from indexers.shards import build_sharded

        rep = build_sharded([], a.index, delete=ids, threads=a.threads, lock_wait=a.wait)
    else:
        read_manifest(a.index)  # an index must be there: delete never creates one
        rep = build_index([], a.index, delete=ids, threads=a.threads, progress=not a.json, lock_wait=a.wait)
    m = rep.manifest
    _emit({"index": str(a.index), "deleted": rep.deleted, "not_found": len(set(ids)) - rep.deleted,
           "n_docs": m.n_docs, "n_passages": m.n_passages, "seconds": round(rep.seconds["total"], 3)}, a.json,
          f"deleted {rep.deleted} of {len(set(ids))} documents from {a.index} ({m.n_docs} left) "
          f"in {rep.seconds['total']:.1f} s")
    return 0


def _cmd_optimize(a: argparse.Namespace) -> int:
    from indexers.index import optimize
    from indexers.index_dir import read_manifest

    before = len(read_manifest(a.index).segments or [None])
    rep = optimize(a.index, threads=a.threads, progress=not a.json, lock_wait=a.wait)
    m = rep.manifest
    _emit({"index": str(a.index), "segments_before": before, "segments": len(m.segments), "n_docs": m.n_docs,
           "n_passages": m.n_passages, "seconds": round(rep.seconds["total"], 3)}, a.json,
          f"merged {before} segments of {a.index} into {len(m.segments)} ({m.n_passages} passages) "
          f"in {rep.seconds['total']:.1f} s")
    return 0


def _cmd_stats(a: argparse.Namespace) -> int:
    from indexers.check import index_stats

    s = index_stats(a.index)
    by = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in s["bytes"].items())
    _emit(s, a.json, f"{s['index']}: {s['n_docs']} documents, {s['n_passages']} passages ({s['deleted']} deleted "
                     f"rows in {s['segments']} segments), generation {s['generation']}, stores "
                     f"{', '.join(s['stores'])}; {by}")
    return 0


def _cmd_check(a: argparse.Namespace) -> int:
    from dataclasses import asdict

    from indexers.check import check_index

    rep = check_index(a.index)
    _emit({**asdict(rep), "ok": True, "seconds": round(rep.seconds, 3)}, a.json,
          f"{rep.index}: OK (generation {rep.generation}, {rep.n_docs} documents, {rep.n_passages} passages, "
          f"{rep.files} files, {rep.bytes / 1e6:.1f} MB checked in {rep.seconds:.2f} s)")
    return 0


def _filter_json(text: str) -> dict:
    """--filter: a Haystack filter as a JSON object (checked further by indexers.filters)."""
    try:
        value = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not JSON ({e}); quote the filter, e.g. '{{\"field\": \"meta.year\", "
                                         f"\"operator\": \">=\", \"value\": 2000}}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"a filter is a JSON object, got {type(value).__name__}")
    return value


def _cmd_search(a: argparse.Namespace) -> int:
    from rag.sdk import RAG

    if (a.query is None) == (a.queries is None):
        raise ConfigError("adarag search: give either a query (`adarag search INDEX \"some words\"`) or "
                          "--queries FILE --run-out RUN.trec, not both and not neither")
    if a.rerank is not None:  # a bad spec fails before the index opens, not after the search
        from retrievers.rerank import check_reranker_spec

        check_reranker_spec(a.rerank)
    with RAG.open(a.index, threads=a.threads, max_query_chars=a.max_query_chars, ray=a.ray,
                  replicas=a.replicas) as rag:
        if a.queries is not None:
            if not a.run_out:
                raise ConfigError("adarag search --queries needs --run-out RUN.trec: the file the run is written to")
            from eval.beir import load_queries

            qs = list(load_queries(a.queries).items())
            t = time.perf_counter()
            rows = rag.retriever.rows_batch([q for _, q in qs], a.store, a.k, a.filter)
            secs = time.perf_counter() - t
            store = a.store or rag.retriever.default_store
            tag = f"adarag-{store}"
            Path(a.run_out).parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(a.run_out, "w", encoding="utf-8") as f:
                    for (qid, _), (r, s) in zip(qs, rows):
                        for rank, (row, score) in enumerate(zip(r, s), 1):
                            f.write(f"{qid} Q0 {rag.index.ids[row]} {rank} {float(score):.6f} {tag}\n")
            except OSError as e:  # a write error (disk full) names no file: name the run file
                raise OSError(e.errno, e.strerror, str(a.run_out)) if e.filename is None else e from None
            _emit({"run": str(a.run_out), "n_queries": len(qs), "seconds": round(secs, 3), "store": store},
                  a.json, f"wrote {len(qs)} queries x top-{a.k} to {a.run_out} in {secs:.2f} s")
            return 0
        res = rag.search(a.query, store=a.store, k=a.k, filters=a.filter)
    hits, timings = res.hits, dict(res.timings)
    if a.rerank is not None:  # re-score the top --rerank-depth hits (retrievers.rerank)
        from retrievers.rerank import load_reranker

        t = time.perf_counter()
        hits = load_reranker(a.rerank, threads=a.threads).rerank(a.query, hits, a.rerank_depth)
        timings["rerank"] = time.perf_counter() - t
    if a.json:
        print(json.dumps({"hits": [h.to_dict() for h in hits], "store": res.store, "timings": timings,
                          **({"reranker": a.rerank} if a.rerank is not None else {})},
                         ensure_ascii=False))
    else:
        for i, h in enumerate(hits, 1):
            print(f"{i:>3}. {h.score:9.4f}  {h.id}  {h.title}\n       {h.text[:160]}")
        print(f"({res.store}, {res.timings['retrieve'] * 1000:.1f} ms)")
    return 0


def _print_answer(ans, gold: Sequence[str] | None = None) -> None:
    print(f"Q: {ans.question}")
    print(f"A: {ans.answer}")
    if gold is not None:
        print(f"   gold: {' | '.join(gold)}")
    for pid in ans.citations:
        h = next((h for h in ans.passages if h.id == pid), None)
        print(f"   cites [{pid}] {h.text[:120] if h else ''}")
    if not ans.citations:
        print("   (no passage supports this answer)")
    by = f"chosen by {ans.controller['controller']}" if getattr(ans, "controller", None) else "fixed"
    print(f"   mode {ans.mode} ({by}), {ans.retrieval_calls} retrieval call(s)")
    t = ans.timings
    print(f"   retrieve {t['retrieve'] * 1000:.0f} ms, generate {t['generate']:.1f} s "
          f"({ans.n_prompt_tokens} prompt + {ans.n_new_tokens} new tokens)")
    d = ans.decoding
    if d.get("target_forwards"):
        print(f"   decoding: draft {d['draft']}, {d['mean_accepted']:.2f} tokens per target forward, "
              f"{d['tokens_per_s']:.1f} tokens/s")


def _cmd_ask(a: argparse.Namespace) -> int:
    from rag.sdk import RAG

    with RAG.open(a.index, generator=a.generator, threads=a.threads, max_query_chars=a.max_query_chars,
                  reranker=a.reranker, budget_tokens=a.budget, controller=a.controller, ray=a.ray,
                  replicas=a.replicas) as rag:
        budget = {"retrieval_calls": a.max_calls, "seconds": a.max_seconds}
        ans = rag.ask(a.question, mode=a.mode, k=a.k, store=a.store, max_new_tokens=a.max_new_tokens,
                      draft=a.draft, filters=a.filter,
                      budget=budget if a.max_calls is not None or a.max_seconds is not None else None)
    if a.json:
        d = ans.to_dict()
        d.pop("raw_text", None)
        print(json.dumps(d, ensure_ascii=False))
    else:
        _print_answer(ans)
    return 0


def _cmd_generate(a: argparse.Namespace) -> int:
    from services.generate import generate_file

    obj = generate_file(a.prompts, generator=a.generator, draft=a.draft, max_new_tokens=a.max_new_tokens,
                        threads=a.threads)
    human = "\n".join(f"[{o['id']}] {o['text']}" for o in obj["outputs"]) + (
        f"\n({obj['tokens']} tokens in {obj['seconds']:.1f} s, {obj['tokens_per_s']:.2f} tokens/s, draft "
        f"{obj['draft']}, {obj['target_forwards']} target forwards, {obj['mean_accepted']:.2f} tokens/forward)")
    _emit(obj, a.json, human)
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    from rag.demo import answer_contains_gold, run_demo

    print(f"adarag {_version()} demo: {a.questions} FanOutQA questions (answerable from the corpus) over 10,033 "
          "bundled Wikipedia summaries "
          f"(generator {a.generator}, embedder {a.embedder}); the first run builds the index and converts the model.",
          flush=True)
    correct = []

    def show(item, ans):
        ok = answer_contains_gold(item, ans)
        correct.append(ok)
        print()
        _print_answer(ans, gold=item.answers)
        print(f"   gold answer in output: {'yes' if ok else 'no'}", flush=True)

    res = run_demo(a.questions, generator=a.generator, embedder=a.embedder, threads=a.threads, on_answer=show)
    print(f"\n{sum(correct)}/{len(correct)} answers contain the gold string; index "
          f"{'built' if res.built else 'loaded'} in {res.index_seconds:.1f} s; total {res.total_seconds:.1f} s")
    return 0


def _cmd_ngram(a: argparse.Namespace) -> int:
    from indexers.index import open_index
    from retrievers.search import check_query

    check_query(a.text, what="text")
    with open_index(a.index, verify=not a.no_verify) as ix:
        if ix.ngram is None:
            raise ConfigError(f"index {a.index} has no ngram store; rebuild with "
                             f"`adarag index CORPUS --out {a.index} --rebuild --stores bm25,dense,ngram`")
        tok = ix.ngram_tokenizer()
        ids = ix.ngram_tokens(a.text)
        rows, offsets = ix.ngram.locate(ids, limit=a.limit)
        cont, counts = ix.ngram.continuations(ids, a.k)
        obj = {"tokens": tok.convert_ids_to_tokens(ids), "token_ids": ids, "count": ix.ngram.count(ids),
               "locations": [[str(ix.ids[r]), int(o)] for r, o in zip(rows, offsets)],
               "continuations": [[tok.decode([int(t)]), int(c)] for t, c in zip(cont, counts)]}
    human = (f"tokens: {obj['tokens']}\ncount: {obj['count']}\nlocations (passage, token offset): "
             f"{obj['locations'][:10]}{' ...' if len(obj['locations']) > 10 else ''}\n"
             f"continuations: {obj['continuations']}")
    _emit(obj, a.json, human)
    return 0


def _cmd_eval_qa(a: argparse.Namespace) -> int:
    from eval.qa_runner import run_qa_eval

    m = run_qa_eval(a.data, a.index, a.out, mode=a.mode, limit=a.limit, generator=a.generator, k=a.k,
                    store=a.store, threads=a.threads, format=a.format, progress=not a.json)
    human = "\n".join(f"{key:>24}: {val}" for key, val in m.items()) + f"\nreport: {Path(a.out) / 'report.html'}"
    _emit(m, a.json, human)
    return 0


def _cmd_eval_beir(a: argparse.Namespace) -> int:
    from eval.beir import run_beir

    m = run_beir(a.data, a.index, a.config, a.out, split=a.split, k=a.k, threads=a.threads,
                 rerank=a.rerank, rerank_depth=a.rerank_depth)
    human = "\n".join(f"{key:>12}: {val}" for key, val in m.items()) + f"\nreport: {Path(a.out) / 'report.html'}"
    _emit(m, a.json, human)
    return 0


def _cmd_eval_2cr(a: argparse.Namespace) -> int:
    from eval.beir import TWO_CR_YAML, check_2cr, format_grades
    from eval.beir_report import write_2cr_report

    only = [c.strip() for c in a.only.split(",") if c.strip()] if a.only else None
    grades = check_2cr(a.yaml, only, work_dir=a.work, include_slow=not a.no_slow)
    paths = write_2cr_report(grades, a.out, source=str(a.yaml or TWO_CR_YAML.name)) if a.out else ()
    n_fail = sum(g.grade == "FAIL" for g in grades)
    human = format_grades(grades) + "".join(f"\nreport: {p}" for p in paths)
    _emit({"grades": [g._asdict() for g in grades], "fail": n_fail, "report": [str(p) for p in paths]}, a.json,
          human)
    return 1 if n_fail else 0


def _cmd_data(a: argparse.Namespace) -> int:
    from eval.bundled_beir import BUNDLED

    if a.name == "mixed":
        from eval.mixed import write_mixed

        n = write_mixed(a.out, a.shared, per_dataset=a.per_dataset, part=a.part)
        _emit(n, a.json, f"wrote {n['n_questions']} questions ({', '.join(f'{d} {c}' for d, c in n['per_dataset'].items())})"
                         f" and {n['n_docs']} paragraphs to {a.out}")
        return 0
    n = BUNDLED[a.name](a.out)
    _emit({"data": str(a.out), **n}, a.json, f"wrote {n['n_queries']} queries over {n['n_docs']} documents "
                                              f"(BEIR layout) to {a.out}")
    return 0


def _cmd_eval_mixed(a: argparse.Namespace) -> int:
    from eval.mixed import run_mixed

    m = run_mixed(a.out, index=a.index, mode=a.mode, per_dataset=a.per_dataset, part=a.part, generator=a.generator,
                  k=a.k, threads=a.threads, root=a.shared, progress=not a.json)
    rows = [f"{'':>16} {'n':>4} {'EM':>6} {'F1':>6} {'calls/q':>8} {'s/q':>6}"]
    for name, r in [("all", m), *m.get("by_hops", {}).items(), *m.get("by_dataset", {}).items()]:
        rows.append(f"{name:>16} {r['n']:>4} {r['em']:>6.3f} {r['f1']:>6.3f} {r['retrieval_calls_per_q']:>8.2f} "
                    f"{r['seconds_per_q']:>6.1f}")
    _emit(m, a.json, "\n".join(rows) + f"\nreport: {Path(a.out) / a.mode / 'report.html'}")
    return 0


def _cmd_mcp(a: argparse.Namespace) -> int:
    from rag.sdk import RAG
    from services.mcp_server import serve_mcp

    with RAG.open(a.index, generator=a.generator, threads=a.threads) as rag:
        serve_mcp(rag, http=a.http, host=a.host, port=a.port)
    return 0


def _cmd_report(a: argparse.Namespace) -> int:
    from eval.beir import METRICS_FILE

    beir = [(d / METRICS_FILE).exists() and not (d / "config.json").exists() for d in a.run_dirs]
    if any(beir) and not all(beir):
        raise ConfigError("give either `adarag eval beir` run directories or `adarag eval qa` ones, not a mix")
    if all(beir):
        from eval.beir_report import write_beir_report as write_report
    else:
        from eval.report import write_report
    md, html = write_report(a.run_dirs, a.out or a.run_dirs[0])
    _emit({"markdown": str(md), "html": str(html)}, a.json, f"wrote {md} and {html}")
    return 0


def _cmd_serve(a: argparse.Namespace) -> int:
    from services.serve import serve, settings_from_args

    settings = settings_from_args(host=a.host, api_keys_file=a.api_keys_file, no_auth=a.no_auth,
                                  max_queue=a.max_queue, timeout=a.timeout, max_body_bytes=a.max_body_bytes,
                                  cors_origins=tuple(a.cors_origin))
    serve(a.index, settings, host=a.host, port=a.port, generator=a.generator, threads=a.threads, ray=a.ray,
          replicas=a.replicas)
    _emit({"index": str(a.index), "stopped": True}, a.json, "adarag serve: stopped")
    return 0


def _cmd_controller(a: argparse.Namespace) -> int:
    if a.controller_command == "collect":
        from eval.collect import collect

        obj = collect(a.data, a.index, a.out, generator=a.generator, limit=a.limit, shard=a.shard,
                      threads=a.threads, max_steps=a.max_steps, progress=not a.json, batch=a.batch)
        human = f"cached {obj['n']} questions ({obj['added']} new) in {obj['file']}"
    elif a.controller_command == "train":
        from eval.controller_replay import train_from_cache

        obj = train_from_cache(a.cache, a.index, a.out, kind=a.kind, lam=a.lam, epochs=a.epochs,
                               generator=a.generator, threads=a.threads or 1, feedback=a.feedback, cv=a.cv)
        human = f"trained a {a.kind} policy on {obj['n_train']} cached questions: {a.out}"
    else:
        from eval.controller_replay import replay_table, write_markdown

        named = dict((p.split("=", 1) if "=" in p else (Path(p).name, p)) for p in a.policy)
        obj = replay_table(a.cache, a.index, {name: Path(p) for name, p in named.items()}, split=a.split)
        human = f"wrote {write_markdown(obj, a.out, note='Replay of cached per-arm outcomes (not a live run).')}"
    _emit(obj, a.json, human)
    return 0


def _cmd_reranker(a: argparse.Namespace) -> int:
    from indexers.index import open_index
    from retrievers.rerank.train.trainer import TrainParams, train_reranker, train_summary

    queries = qrels = None
    if a.qrels is not None:  # files parsed here, at the edge; the trainer takes plain dicts
        from eval.beir import load_qrels, load_queries

        qrels = load_qrels(a.qrels)
        queries = load_queries(a.queries or a.qrels.resolve().parent.parent / "queries.jsonl")
    if a.kind == "ltr":
        from retrievers.rerank.train.trainer import train_ltr

        if qrels is None:
            raise ConfigError("--kind ltr learns from judged queries: pass --qrels FILE (and --queries if the "
                              "queries.jsonl is not next to the qrels/ folder)")
        with open_index(a.index) as index:
            obj = train_ltr(index, a.out, queries=queries or {}, qrels=qrels, first_stage=a.first_stage,
                            depth=a.depth, l2=a.l2, split_seed=a.split_seed, train_fraction=a.train_fraction,
                            threads=a.threads, force=a.force, progress=not a.json)
        nd = obj["train_ndcg@10"]
        _emit(obj, a.json, f"trained a feature reranker on {obj['train_queries']} queries in {obj['seconds']} s "
                           f"(train nDCG@10 {nd['first_stage']} -> {nd['reranked']}): {a.out} "
                           f"(use --rerank ltr:{a.out})")
        return 0
    params = TrainParams(epochs=a.epochs, batch_size=a.batch_size, max_length=a.max_length, lr=a.lr,
                         hard_negatives=a.hard_negatives, random_negatives=a.random_negatives,
                         first_stage=a.first_stage, max_pairs=a.max_pairs, split_seed=a.split_seed,
                         train_fraction=a.train_fraction, threads=a.threads, loss=a.loss,
                         pseudo_queries=a.pseudo_queries, ict_epochs=a.ict_epochs)
    with open_index(a.index) as index:
        obj = train_summary(train_reranker(index, a.out, queries=queries, qrels=qrels, teacher=a.teacher,
                                           params=params, force=a.force, progress=not a.json))
    _emit(obj, a.json, f"trained a cross-encoder on {obj['data']['pairs']} pairs in {obj['seconds']} s: "
                       f"{a.out} (use --rerank cross-encoder:{a.out})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from rag.demo import DEMO_EMBEDDER, DEMO_GENERATOR
    from rag.sdk import DEFAULT_BUDGET_TOKENS, DEFAULT_GENERATOR
    from rag.speculative import DRAFTS
    from retrievers.rerank import DEFAULT_DEPTH, DEFAULT_RERANKER
    from retrievers.search import MAX_QUERY_CHARS

    p = _Parser(prog="adarag", description="Adaptive retrieval-augmented generation, offline.")
    p.add_argument("--version", action="version", version=f"adarag {_version()}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, threads=True, writes=False):
        sp.add_argument("--json", action="store_true", help="print one JSON object on the last line")
        if writes:
            sp.add_argument("--wait", type=_seconds, default=DEFAULT_LOCK_WAIT, metavar="SECONDS",
                            help="how long to wait while another process writes the index (default %(default)g s; "
                                 "0: fail at once)")
        if threads:
            sp.add_argument("--threads", type=_THREADS, default=None, help="CPU threads for models (default: all cores)")

    ix = sub.add_parser("index", help="index a corpus (JSONL, BEIR corpus.jsonl, or a folder of .txt/.md)")
    ix.add_argument("corpus", nargs="+", type=Path)
    ix.add_argument("--out", required=True, type=Path, help="index directory (added to if it exists)")
    ix.add_argument("--stores", default="bm25,dense,ngram", help="comma-separated subset of bm25,dense,ngram")
    ix.add_argument("--sql", default=None, help="SQLAlchemy URL for the document store (default: SQLite in --out)")
    ix.add_argument("--embedder", default="minilm", help="dense model: minilm, minilm-int8, e5-small or a path")
    ix.add_argument("--dense-index", choices=["flat", "hnsw"], default="flat")
    ix.add_argument("--passage-words", type=bounded_int(1, MAX_COUNT), default=200)
    ix.add_argument("--passage-overlap", type=bounded_int(0, MAX_COUNT), default=50,
                    help="least words shared by consecutive windows of a long document")
    ix.add_argument("--rebuild", action="store_true", help="start from scratch instead of adding to --out")
    ix.add_argument("--shards", type=bounded_int(1, 1000), default=None,
                    help="build a sharded index of N shards (documents routed by a hash of their id)")
    ix.add_argument("--ray", default=None, metavar="auto|local|ADDRESS",
                    help="build the shards on Ray (the ray extra): a local instance, the running cluster, or one")
    common(ix, writes=True)
    ix.set_defaults(fn=_cmd_index)

    dl = sub.add_parser("delete", help="delete documents (and their passages) from an index, atomically")
    dl.add_argument("index", type=Path)
    dl.add_argument("ids", nargs="*", help="document ids")
    dl.add_argument("--ids-file", type=Path, default=None, help="a file of document ids, one per line")
    common(dl, writes=True)
    dl.set_defaults(fn=_cmd_delete)

    op = sub.add_parser("optimize", help="merge an index's segments into one, dropping deleted rows")
    op.add_argument("index", type=Path)
    common(op, writes=True)
    op.set_defaults(fn=_cmd_optimize)

    st = sub.add_parser("stats", help="what an index holds: counts, segments, bytes per store, build parameters")
    st.add_argument("index", type=Path)
    common(st, threads=False)
    st.set_defaults(fn=_cmd_stats)

    ck = sub.add_parser("check", help="verify an index completely: checksums, row maps, counts (exit 2 if not)")
    ck.add_argument("index", type=Path)
    common(ck, threads=False)
    ck.set_defaults(fn=_cmd_check)

    se = sub.add_parser("search", help="rank passages for a query, or run a BEIR queries file")
    se.add_argument("index", type=Path)
    se.add_argument("query", nargs="?")
    se.add_argument("--store", default=None,
                    help="bm25, dense, ngram, fused (= bm25+dense; the default), or stores joined by '+'")
    se.add_argument("-k", type=_COUNT, default=None, help="hits per query (default 10; 100 with --queries)")
    se.add_argument("--queries", type=Path, default=None, help="BEIR queries.jsonl")
    se.add_argument("--run-out", type=Path, default=None, help="TREC run file to write with --queries")
    se.add_argument("--max-query-chars", type=_CHARS, default=MAX_QUERY_CHARS)
    se.add_argument("--rerank", nargs="?", const=DEFAULT_RERANKER, default=None, metavar="SPEC",
                    help=f"rerank the hits: none, ltr, ltr:DIR, llm, llm:MODEL or cross-encoder:PATH "
                         f"(bare: {DEFAULT_RERANKER})")
    se.add_argument("--rerank-depth", type=_COUNT, default=DEFAULT_DEPTH, help="hits the reranker re-scores")
    se.add_argument("--filter", type=_filter_json, default=None, metavar="JSON",
                    help='only documents matching a Haystack filter, e.g. \'{"field": "meta.year", "operator": '
                         '">=", "value": 2000}\'')
    _ray_args(se)
    common(se)
    se.set_defaults(fn=_cmd_search)

    ak = sub.add_parser("ask", help="answer a question from the index, with citations")
    ak.add_argument("index", type=Path)
    ak.add_argument("question")
    ak.add_argument("--generator", default=DEFAULT_GENERATOR, help="qwen-1.5b, qwen-0.5b, smollm-135m or a path")
    ak.add_argument("--store", default=None, help="as for search (default: fused)")
    ak.add_argument("--filter", type=_filter_json, default=None, metavar="JSON",
                    help="only evidence from documents matching this Haystack filter (as for search)")
    ak.add_argument("-k", type=_COUNT, default=None,
                    help="fixed number of passages in the prompt (default: the selector chooses under --budget)")
    ak.add_argument("--budget", type=_TOKENS, default=DEFAULT_BUDGET_TOKENS,
                    help="evidence token budget, in generator tokens")
    ak.add_argument("--reranker", default=DEFAULT_RERANKER,
                    help=f"none, ltr, ltr:DIR, llm, llm:MODEL or cross-encoder:PATH (default {DEFAULT_RERANKER})")
    ak.add_argument("--max-new-tokens", type=_TOKENS, default=48)
    ak.add_argument("--max-query-chars", type=_CHARS, default=MAX_QUERY_CHARS)
    ak.add_argument("--max-calls", type=bounded_int(0, 100), default=None,
                    help="cost cap: at most this many retrieval calls (the controller picks a mode that fits)")
    ak.add_argument("--max-seconds", type=_seconds, default=None,
                    help="cost cap: iterative / chain start no new round after this many seconds")
    common(ak)
    ak.add_argument("--draft", default=None, choices=DRAFTS,
                    help="speculative decoding draft source (default: the fastest exact one, copy)")
    ak.add_argument("--mode", default="auto", choices=("auto", "none", "one_shot", "iterative", "chain"),
                    help="search mode; auto (default) lets the controller pick per question")
    ak.add_argument("--controller", default="auto",
                    help="who picks the mode under --mode auto: auto (the shipped policy), bandit, probe, a mode "
                         "name or a policy path")
    _ray_args(ak)
    ak.set_defaults(fn=_cmd_ask)

    gn = sub.add_parser("generate", help="complete a JSONL file of prompts with exact speculative decoding")
    gn.add_argument("--prompts", required=True, type=Path,
                    help='JSONL: {"id", "prompt"} or {"id", "question", "passages": [...]} per line')
    gn.add_argument("--draft", default=None, choices=DRAFTS,
                    help="draft source (default: copy; model drafts load qwen-0.5b for qwen-1.5b)")
    gn.add_argument("--generator", default=DEFAULT_GENERATOR, help="qwen-1.5b, qwen-0.5b, smollm-135m or a path")
    gn.add_argument("--max-new-tokens", type=_TOKENS, default=64)
    common(gn)
    gn.set_defaults(fn=_cmd_generate)

    ng = sub.add_parser("ngram", help="look a text up in the n-gram store: count, locations, continuations")
    ng.add_argument("index", type=Path)
    ng.add_argument("text")
    ng.add_argument("--limit", type=_COUNT, default=100, help="locations to list")
    ng.add_argument("-k", type=_COUNT, default=10, help="continuations to list")
    ng.add_argument("--no-verify", action="store_true", help="skip the checksum pass over the index files")
    common(ng, threads=False)
    ng.set_defaults(fn=_cmd_ngram)

    ev = sub.add_parser("eval", help="offline evaluation")
    evs = ev.add_subparsers(dest="eval_command", required=True)
    qa = evs.add_parser("qa", help="QA evaluation (EM, F1, KILT R-precision) with a resumable run directory")
    qa.add_argument("--data", required=True, type=Path, help="QA file: KILT, HotpotQA-style JSON, or JSONL")
    qa.add_argument("--index", required=True, type=Path)
    qa.add_argument("--mode", default="one_shot", help="none, one_shot, iterative, chain, bandit or probe")
    qa.add_argument("--out", required=True, type=Path, help="run directory (resumed if it exists)")
    qa.add_argument("--limit", type=_LIMIT, default=None)
    qa.add_argument("-k", "--k", type=_COUNT, default=4, dest="k")
    qa.add_argument("--generator", default="qwen-0.5b")
    qa.add_argument("--store", default=None, help="as for search (default: fused)")
    qa.add_argument("--format", default="auto", help="auto, kilt, hotpotqa, musique, jsonl")
    common(qa)
    qa.set_defaults(fn=_cmd_eval_qa)

    be = evs.add_parser("beir", help="BEIR evaluation: nDCG@10, Recall@100, MRR@10, MAP, a TREC run and a report")
    be.add_argument("--data", required=True, type=Path, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/")
    be.add_argument("--index", required=True, type=Path, help="an index built from that corpus")
    be.add_argument("--config", default="bm25", help="bm25, dense, ngram, fused, or stores joined by '+'")
    be.add_argument("--out", required=True, type=Path, help="run directory")
    be.add_argument("--split", default="test")
    be.add_argument("-k", type=_COUNT, default=100)
    be.add_argument("--rerank", default=None, metavar="SPEC",
                    help=f"reranker for X+rerank configs: {DEFAULT_RERANKER} (default), ltr:DIR, llm, llm:MODEL or "
                         "cross-encoder:PATH")
    be.add_argument("--rerank-depth", type=_COUNT, default=DEFAULT_DEPTH, help="passages the reranker re-scores")
    common(be)
    be.set_defaults(fn=_cmd_eval_beir)

    mx = evs.add_parser("mixed", help="the mixed single-/multi-hop benchmark: the six QA sets of the shared data over "
                        "one index of their six corpora, metrics per set and per hop count")
    mx.add_argument("--out", required=True, type=Path, help="run folder: data/, index/ (unless --index), <mode>/")
    mx.add_argument("--index", type=Path, default=None, help="index of the mixed corpus (built there if absent)")
    mx.add_argument("--mode", default="one_shot", help="none, one_shot, iterative, chain, bandit or probe")
    mx.add_argument("--per-dataset", type=_COUNT, default=50, help="questions per set (stratified by id hash)")
    mx.add_argument("--part", choices=["all", "train", "heldout"], default="all",
                    help="the controller split of each set (30%% held out by crc32 of the id)")
    mx.add_argument("--generator", default="qwen-0.5b")
    mx.add_argument("-k", "--k", type=_COUNT, default=4, dest="k")
    mx.add_argument("--shared", type=Path, default=None, help="folder holding the six sets (default: the shared data)")
    common(mx)
    mx.set_defaults(fn=_cmd_eval_mixed)

    tc = evs.add_parser("2cr", help="two-click reproduction: rebuild each condition of eval/2cr/beir.yaml, rerun "
                        "it and grade every metric against the expected score (exit 1 on any FAIL)")
    tc.add_argument("--only", default=None, help="conditions to run, comma-separated (default: all)")
    tc.add_argument("--yaml", type=Path, default=None, help="a 2CR YAML (default: the bundled eval/2cr/beir.yaml)")
    tc.add_argument("--work", type=Path, default=None, help="folder for the indexes and runs (default: temporary)")
    tc.add_argument("--no-slow", action="store_true", help="skip the conditions that load the dense embedder")
    tc.add_argument("--out", type=Path, default=None, help="write the 2CR table here (2cr.md, 2cr.html)")
    common(tc, threads=False)
    tc.set_defaults(fn=_cmd_eval_2cr)

    rp = sub.add_parser("report", help="Markdown + HTML report comparing run directories (QA or BEIR runs)")
    rp.add_argument("run_dirs", nargs="+", type=Path)
    rp.add_argument("--out", type=Path, default=None, help="default: the first run directory")
    common(rp, threads=False)
    rp.set_defaults(fn=_cmd_report)

    da = sub.add_parser("data", help="write a bundled dataset in the BEIR layout (for adarag eval beir)")
    da.add_argument("name", choices=["fanoutqa-leaf", "mixed"],
                    help="fanoutqa-leaf: FanOutQA leaf questions x Wikipedia summaries (BEIR layout); mixed: the six "
                         "shared QA sets as one corpus.jsonl and one stratified qa.jsonl (eval.mixed)")
    da.add_argument("--out", required=True, type=Path, help="folder for the files")
    da.add_argument("--per-dataset", type=_COUNT, default=None, help="mixed: questions per set (default: all)")
    da.add_argument("--part", choices=["all", "train", "heldout"], default="all", help="mixed: the controller split")
    da.add_argument("--shared", type=Path, default=None, help="mixed: folder holding the six sets")
    common(da, threads=False)
    da.set_defaults(fn=_cmd_data)

    sv = sub.add_parser("serve", help="HTTP service: /v1/ask (JSON or SSE), /v1/search, /v1/documents, /metrics")
    sv.add_argument("index", type=Path)
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=bounded_int(0, 65535), default=8000)
    sv.add_argument("--generator", default=None, help=f"answer model (default {DEFAULT_GENERATOR})")
    sv.add_argument("--api-keys-file", default=None, help="API keys, one a line (besides $ADARAG_API_KEYS)")
    sv.add_argument("--no-auth", action="store_true", help="serve without API keys (loopback only)")
    sv.add_argument("--max-queue", type=bounded_int(1, 10_000), default=4, help="asks admitted at once; more get 503 + Retry-After")
    sv.add_argument("--timeout", type=float, default=120.0, help="per-request timeout in seconds (504 past it)")
    sv.add_argument("--max-body-bytes", type=bounded_int(1, 1 << 34), default=1 << 20, help="larger request bodies get 413")
    sv.add_argument("--cors-origin", action="append", default=[], help="allow this browser origin (off by default)")
    _ray_args(sv)
    common(sv)
    sv.set_defaults(fn=_cmd_serve)

    mc = sub.add_parser("mcp", help="the index as Model Context Protocol tools (search, ask, get_document) for "
                        "agents: stdio, or streamable HTTP on loopback")
    mc.add_argument("index", type=Path)
    mc.add_argument("--generator", default=DEFAULT_GENERATOR, help="answer model for the ask tool")
    mc.add_argument("--http", action="store_true", help="streamable HTTP on --host:--port instead of stdio")
    mc.add_argument("--host", default="127.0.0.1", help="loopback only")
    mc.add_argument("--port", type=bounded_int(0, 65535), default=8765)
    common(mc)
    mc.set_defaults(fn=_cmd_mcp)

    ct = sub.add_parser("controller", help="adaptive search controller: collect outcomes, train, replay-evaluate")
    cts = ct.add_subparsers(dest="controller_command", required=True)
    cc = cts.add_parser("collect", help="run every search mode on a QA set and cache the outcomes (resumable)")
    cc.add_argument("--data", required=True, type=Path)
    cc.add_argument("--index", required=True, type=Path)
    cc.add_argument("--out", required=True, type=Path, help="cache directory")
    cc.add_argument("--limit", type=_LIMIT, default=None)
    cc.add_argument("--generator", default="qwen-0.5b")
    cc.add_argument("--shard", type=_shard, default="0/1", help="i/n: this process takes the questions with crc32 %% n == i")
    cc.add_argument("--max-steps", type=bounded_int(1, 100), default=3)
    cc.add_argument("--batch", type=bounded_int(0, 10_000), default=0, help="decode the none/one_shot answers of this many questions "
                    "together (0: one question at a time)")
    common(cc)
    tr = cts.add_parser("train", help="fit a bandit policy by replaying a collect cache's train split")
    tr.add_argument("--cache", required=True, type=Path)
    tr.add_argument("--index", required=True, type=Path, help="the index the cache was collected on (features)")
    tr.add_argument("--out", required=True, type=Path, help="policy directory")
    tr.add_argument("--kind", choices=["linucb", "thompson", "probe", "classifier"], default="linucb",
                    help="a bandit (linucb, thompson), a Probing-RAG probe on the generator's hidden states, or "
                         "Adaptive-RAG's query-complexity classifier")
    tr.add_argument("--generator", default=None, help="probe: the LM whose hidden states it reads (default: the "
                    "cache's generator)")
    tr.add_argument("--threads", type=_THREADS, default=1, help="probe: CPU threads for the generator")
    tr.add_argument("--lam", type=float, default=0.1, help="reward cost per retrieval call")
    tr.add_argument("--epochs", type=_EPOCHS, default=5, help="bandit feedback: replay passes over the cache")
    tr.add_argument("--feedback", choices=["full", "bandit"], default="full",
                    help="full: every arm learns from every cached outcome (default); bandit: MBA-RAG replay, only "
                         "the picked arm's reward is seen")
    tr.add_argument("--cv", action="store_true", help="bandit: pick ridge and embedding PCA dims by 5-fold "
                    "cross-validation on the train split")
    common(tr, threads=False)
    rp_ = cts.add_parser("replay", help="held-out table of fixed modes and policies from a collect cache")
    rp_.add_argument("--cache", required=True, type=Path)
    rp_.add_argument("--index", required=True, type=Path)
    rp_.add_argument("--policy", action="append", default=[], help="[NAME=]policy directory (repeatable)")
    rp_.add_argument("--out", required=True, type=Path, help="report directory")
    rp_.add_argument("--split", choices=["heldout", "train", "all"], default="heldout",
                     help="all: every cached question (a QA set the policies were not trained on)")
    common(rp_, threads=False)
    ct.set_defaults(fn=_cmd_controller)

    rr = sub.add_parser("reranker", help="train adarag's own rerankers (cross-encoder or feature LTR)")
    rrs = rr.add_subparsers(dest="reranker_command", required=True)
    rt = rrs.add_parser("train", help="train a MiniLM cross-encoder (from qrels or by distilling the LLM judge) "
                                      "or, with --kind ltr, a feature reranker from qrels")
    rt.add_argument("--index", required=True, type=Path)
    rt.add_argument("--kind", choices=("cross-encoder", "ltr"), default="cross-encoder",
                    help="ltr: a linear model over first-stage and title features (seconds; needs --qrels)")
    rt.add_argument("--depth", type=_COUNT, default=DEFAULT_DEPTH, help="ltr: first-stage hits per query it ranks")
    rt.add_argument("--l2", type=float, default=0.01, help="ltr: L2 penalty on the weights")
    src = rt.add_mutually_exclusive_group()
    src.add_argument("--qrels", type=Path, help="BEIR qrels tsv (positives; hard negatives from the index)")
    src.add_argument("--teacher", help="llm or llm:MODEL: label pseudo-queries with the judge's P(yes)")
    rt.add_argument("--queries", type=Path, help="queries.jsonl (default: next to the qrels/ folder)")
    rt.add_argument("--out", required=True, type=Path, help="output model directory")
    rt.add_argument("--force", action="store_true", help="replace --out if it exists")
    rt.add_argument("--epochs", type=_EPOCHS, default=2)
    rt.add_argument("--batch-size", type=_COUNT, default=16)
    rt.add_argument("--max-length", type=_TOKENS, default=256, help="tokens per (query, passage) pair")
    rt.add_argument("--lr", type=float, default=5e-5)
    rt.add_argument("--hard-negatives", type=bounded_int(0, MAX_COUNT), default=6, help="top non-relevant first-stage hits per query")
    rt.add_argument("--random-negatives", type=bounded_int(0, MAX_COUNT), default=2)
    rt.add_argument("--first-stage", default="fused", help="store that mines hard negatives (fused, bm25, ...)")
    rt.add_argument("--max-pairs", type=_LIMIT, default=None, help="cap on training pairs (teacher default 256)")
    rt.add_argument("--split-seed", type=bounded_int(0, 2**32 - 1), default=0)
    rt.add_argument("--train-fraction", type=float, default=0.5, help="judged queries trained on; rest held out")
    rt.add_argument("--loss", choices=("bce", "listwise"), default="bce",
                    help="bce: pointwise; listwise: softmax over 1 positive + --hard-negatives per query")
    rt.add_argument("--pseudo-queries", type=bounded_int(0, _LIMIT_MAX), default=0,
                    help="ICT groups from the corpus trained on first (a sentence finds its passage; listwise)")
    rt.add_argument("--ict-epochs", type=bounded_int(0, 1000), default=1)
    common(rt)
    rr.set_defaults(fn=_cmd_reranker)

    de = sub.add_parser("demo", help="the embedded default: bundled corpus, bundled models")
    de.add_argument("--questions", type=bounded_int(1, 1000), default=5)
    de.add_argument("--generator", default=DEMO_GENERATOR)
    de.add_argument("--embedder", default=DEMO_EMBEDDER)
    de.add_argument("--threads", type=_THREADS, default=None)
    de.set_defaults(fn=_cmd_demo, json=False)
    return p


_OS_HINTS = {
    errno.ENOENT: "check the path and the working directory",
    errno.EACCES: "check its permissions, or choose a path you may write",
    errno.EPERM: "check its permissions, or choose a path you may write",
    errno.EROFS: "the file system is read-only: choose a writable location",
    errno.ENOSPC: "free some disk space and run the command again",
    errno.EDQUOT: "your disk quota is used up: free some space and run the command again",
    errno.EFBIG: "the file outgrew the file-size limit (`ulimit -f`) or the file system's: raise it or write elsewhere",
    errno.EEXIST: "it is in the way: choose another path or move it aside",
    errno.ENOTDIR: "a part of the path is a file, not a folder: fix the path",
    errno.EISDIR: "it is a folder: give a file",
    errno.ENAMETOOLONG: "shorten the path",
    errno.ELOOP: "the path's symbolic links loop: fix them",
}
"""OSErrors a user's paths or machine cause, each with what to do; any other OSError is a bug and keeps its traceback."""


def _user_error(e: BaseException) -> str | None:
    """The message for an error the user caused (adarag's RagError family, a path or disk problem, a file that is
    not UTF-8, input nested or sized past Python's limits), or None for a bug, which keeps its traceback."""
    if isinstance(e, RagError):
        return str(e)
    if isinstance(e, OSError) and e.errno in _OS_HINTS:
        paths = " -> ".join(repr(os.fsdecode(f)) for f in (e.filename, e.filename2) if f is not None)
        return f"{e.strerror or e}{f': {paths}' if paths else ''}: {_OS_HINTS[e.errno]}"
    if isinstance(e, UnicodeDecodeError):
        return f"a file you gave is not UTF-8 ({e.reason} at byte {e.start}): re-encode it, e.g. `iconv -t utf-8`"
    if isinstance(e, RecursionError):
        return ("input nested too deeply to process (deeper than Python's recursion limit of "
                f"{sys.getrecursionlimit():,}): flatten the nested data you passed")
    if isinstance(e, OverflowError):
        return f"a number is too large to use ({e}): pass a smaller value"
    return None


def _fail(message: str, kind: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"error": message, "type": kind}))
    print(f"adarag: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Exit 0 on success, 2 with one message (and `{"error", "type"}` with --json) on bad input."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except ConfigError as e:  # a usage error; the command never ran, so look for --json in the raw arguments
        return _fail(str(e), type(e).__name__, "--json" in argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "k", 0) is None:
        args.k = 100 if getattr(args, "queries", None) else 10
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print("adarag: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed early (`adarag search ... | head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (RagError, OSError, UnicodeDecodeError, RecursionError, OverflowError) as e:
        message = _user_error(e)
        if message is None:
            raise
        log.info("details of the error", exc_info=e)  # the traceback, with -v
        return _fail(message, type(e).__name__, getattr(args, "json", False))


if __name__ == "__main__":
    sys.exit(main())
