"""The SDK facade: `RAG.open(index_dir)`, then `search`, `evidence`, `ask`, `add_documents`, `delete_documents`."""
from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from indexers.errors import Cancelled, ConfigError, NotFoundError, positive_int
from indexers.index import Index, build_index, open_index
from indexers.index_dir import manifest_stamp
from indexers.ingest import check_document
from indexers.lock import DEFAULT_LOCK_WAIT
from indexers.shards import ShardedIndex, build_sharded, executor_for, is_sharded, open_sharded
from indexers.text import plain_words
from indexers.types import Document, Hit, passage_text
from rag.control.base import MIN_CALLS, Budget, Controller
from rag.options import check_options
from rag.trace import ControllerStep, GenerateStep, RetrieveStep, Step, trace_dicts
from retrievers.rerank import DEFAULT_RERANKER
from retrievers.search import MAX_QUERY_CHARS, Retriever, check_query
from retrievers.selector import Candidate, select_passages

__all__ = ["SearchResult", "Evidence", "Answer", "RAG", "DEFAULT_GENERATOR", "DEFAULT_BUDGET_TOKENS",
           "DEFAULT_DEPTH"]

log = logging.getLogger(__name__)

DEFAULT_GENERATOR = "qwen-1.5b"
DEFAULT_BUDGET_TOKENS = 700
"""Evidence tokens (generator tokenizer) the selector may fill: ~5 HotpotQA paragraphs; prefill dominates CPU latency."""
DEFAULT_DEPTH = 20
"""Candidates retrieved (and reranked) before the selector chooses among them."""
_RECENT_ANSWERS = 1024  # answers remembered for feedback(answer_id, ...)


@dataclass(frozen=True)
class SearchResult:
    """Ranked passages for one query; `timings` in seconds."""

    query: str
    store: str
    hits: list[Hit]
    timings: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "store": self.store, "timings": self.timings,
                "hits": [h.to_dict() for h in self.hits]}


@dataclass(frozen=True)
class Evidence:
    """The passages chosen for the generator (in prompt order), the candidates dropped and why, tokens spent."""

    hits: list[Hit]
    dropped: list[tuple[str, str]]  # (passage id, reason)
    tokens: int
    timings: dict[str, float]


@dataclass(frozen=True)
class Answer:
    """A grounded answer. `citations` are passage ids the answer rests on, best first; `timings` in seconds.

    `citation_source` says how they were found: "model" (the generator cited [n] markers), "overlap" (no
    markers; the passages that contain the answer text), or "none". `trace` lists each step the search mode
    took (queries issued, passages, tokens, seconds); `decoding` holds the generator's decoding statistics.
    """

    question: str
    answer: str
    citations: list[str]
    passages: list[Hit]
    mode: str
    timings: dict[str, float]
    generator: str
    n_prompt_tokens: int = 0
    n_new_tokens: int = 0
    citation_source: Literal["model", "overlap", "none"] = "none"
    raw_text: str = field(default="", repr=False)
    trace: list[Step] = field(default_factory=list)
    retrieval_calls: int = 0
    decoding: dict[str, Any] = field(default_factory=dict)
    controller: dict[str, Any] = field(default_factory=dict)
    answer_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passages"] = [h.to_dict() for h in self.passages]
        d["trace"] = trace_dicts(self.trace)
        by_id = {h.id: h for h in self.passages}
        d["citation_spans"] = [{"id": c, "doc_id": by_id[c].doc_id, "start": by_id[c].start, "end": by_id[c].end}
                               for c in self.citations if c in by_id]
        return d


def _overlap_citations(answer: str, hits: Sequence[Hit]) -> list[str]:
    """Passages whose text contains the (normalised) answer: attribution when the model cited nothing."""
    a = plain_words(answer)
    if not a:
        return []
    return [h.id for h in hits if a in plain_words(f"{h.title} {h.text}")]


def _as_document(d: Document | Mapping[str, Any], i: int) -> Document:
    if isinstance(d, Document):
        return d
    if not isinstance(d, Mapping):
        raise TypeError(f"document {i} must be a Document or a dict with id and text, got {type(d).__name__}")
    unknown = set(d) - {"id", "text", "title", "metadata"}
    if unknown:
        raise ConfigError(f"document {i} has unknown field(s) {sorted(unknown)}: use id, text, title, metadata")
    for key in ("id", "text"):
        if not isinstance(d.get(key), str) or not d[key].strip():
            raise ConfigError(f"document {i} needs a non-empty string {key!r}")
    meta = d.get("metadata")
    if meta is not None and not isinstance(meta, Mapping):
        raise ConfigError(f"document {i} ({d['id']!r}): metadata must be a dict of JSON values, got "
                          f"{type(meta).__name__} {meta!r:.60}: wrap it, e.g. {{\"note\": ...}}, or leave it out")
    return Document(id=d["id"], text=d["text"], title=d.get("title") or "", metadata=dict(meta or {}))


class _RWLock:
    """Many readers (search, ask) or one writer (an index swap); a waiting writer blocks new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting_writers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class RAG:
    """An opened index plus (lazily) its query embedder, reranker and generator.

    Thread-safe: searches run concurrently; generation is serialised by a lock (one model, one forward at a
    time); `add_documents` / `delete_documents` build the next generation of the index while searches go on,
    then swap it in (a failed build leaves the old generation open). A generation published by another
    process is picked up on the next call (`auto_reload`).
    """

    def __init__(self, index: Index | ShardedIndex, *, generator: str = DEFAULT_GENERATOR, threads: int | None = None,
                 max_query_chars: int = MAX_QUERY_CHARS, reranker: str = DEFAULT_RERANKER,
                 budget_tokens: int = DEFAULT_BUDGET_TOKENS, depth: int = DEFAULT_DEPTH,
                 controller: str = "auto", verify: bool = True, auto_reload: bool = True,
                 lock_wait: float | None = DEFAULT_LOCK_WAIT) -> None:
        check_options(generator=generator, threads=threads, max_query_chars=max_query_chars, reranker=reranker,
                      budget_tokens=budget_tokens, depth=depth, controller=controller, verify=verify,
                      auto_reload=auto_reload, lock_wait=lock_wait)
        self.index = index
        self.retriever = Retriever(index, max_query_chars=max_query_chars, threads=threads)
        self.generator_name = generator
        self.reranker_spec = reranker
        self.controller_spec = controller
        self._controller = None
        self.budget_tokens = budget_tokens
        self.depth = depth
        self.threads = threads
        self.max_query_chars = max_query_chars
        self._generator = None
        self._reranker = None
        self._gen_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._index_lock = _RWLock()
        self._recent: OrderedDict[str, Answer] = OrderedDict()
        self.verify = verify
        self.auto_reload = auto_reload
        self.lock_wait = lock_wait
        self.reload_error: str | None = None
        self._failed_stamp: tuple[int, int, int] | None = None

    @classmethod
    def open(cls, index_dir: str | Path, *, generator: str = DEFAULT_GENERATOR, threads: int | None = None,
             verify: bool = True, max_query_chars: int = MAX_QUERY_CHARS, reranker: str = DEFAULT_RERANKER,
             budget_tokens: int = DEFAULT_BUDGET_TOKENS, depth: int = DEFAULT_DEPTH,
             controller: str = "auto", auto_reload: bool = True,
             lock_wait: float | None = DEFAULT_LOCK_WAIT, ray: str | None = None, replicas: int = 1) -> "RAG":
        """Open (and by default checksum-verify) an index built by `adarag index`.

        `controller` decides the search mode of `ask(mode=None)`: "auto" (the shipped bandit policy when this
        install has one, else one_shot), "bandit", "probe", a policy directory, or a fixed mode name.
        `auto_reload` switches to a generation another process publishes (checked with one stat per call);
        `lock_wait` is how long add/delete wait for another writer of the index. A sharded index (built with
        `--shards N`) is served in-process, or with `ray` ("local", "auto" or a cluster address) by Ray actors,
        `replicas` per shard; results are the same.
        """
        check_options(index_dir=index_dir, generator=generator, threads=threads, verify=verify,
                      max_query_chars=max_query_chars, reranker=reranker, budget_tokens=budget_tokens, depth=depth,
                      controller=controller, auto_reload=auto_reload, lock_wait=lock_wait)
        return cls(_open(index_dir, verify, ray, replicas), generator=generator, threads=threads,
                   max_query_chars=max_query_chars, reranker=reranker, budget_tokens=budget_tokens, depth=depth,
                   controller=controller, verify=verify, auto_reload=auto_reload, lock_wait=lock_wait)

    # ------------------------------------------------------------------ models

    @property
    def generator(self):
        """The causal LM, loaded (and on first use converted and cached) on first access."""
        if self._generator is None:
            with self._load_lock:
                if self._generator is None:
                    from rag.generator import Generator

                    self._generator = Generator.load(self.generator_name, threads=self.threads)
        return self._generator

    @property
    def reranker(self):
        """The reranker named at open (None for "none"), constructed on first use."""
        if self._reranker is None and self.reranker_spec != "none":
            with self._load_lock:
                if self._reranker is None:
                    from retrievers.rerank import load_reranker

                    self._reranker = load_reranker(self.reranker_spec, threads=self.threads)
        return self._reranker

    @property
    def controller(self) -> Controller:
        """The search-mode controller named at open (rag.control.load), loaded on first use."""
        if self._controller is None:
            with self._load_lock:
                if self._controller is None:
                    from rag.control.load import DEFAULT_POLICY, load_controller

                    spec = self.controller_spec
                    if spec == "auto":  # the shipped policy reads MiniLM query embeddings: only for such indexes
                        fits = DEFAULT_POLICY.is_dir() and "dense" in self.index.stores and \
                            self.index.params.dense.embedder.startswith("minilm")
                        spec = "bandit" if fits else "one_shot"
                    self._controller = load_controller(spec, rag=self)
        return self._controller

    def warm_up(self) -> None:
        """Load every model a request may need (generator, query embedder, reranker), so the first one is fast."""
        _ = self.generator
        if "dense" in self.index.stores:
            self.index.embedder(self.threads)
        if self.reranker is not None:
            self.reranker.warm_up()

    @property
    def ready(self) -> bool:
        """True once the generator is loaded (see warm_up)."""
        return self._generator is not None

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` under the generator's tokenizer (what the evidence budget is counted in)."""
        return len(self.generator.tokenizer(text, add_special_tokens=False)["input_ids"])

    # ------------------------------------------------------------------ retrieval

    def search(self, query: str, *, store: str | None = None, k: int = 10, rerank: bool = False,
               filters: Mapping[str, Any] | None = None) -> SearchResult:
        """Top-k passages from one store or a fusion of stores; `rerank` re-scores them with the open reranker.
        `filters` (Haystack's filter syntax over `meta.*`, `id`, `content`) keeps only matching documents."""
        t = time.perf_counter()
        with self._reading():
            hits = self.retriever.search(query, store, max(k, self.depth) if rerank else k, filters)
            default_store = self.retriever.default_store
        timings = {"retrieve": time.perf_counter() - t}
        if rerank:
            if self.reranker is None:
                raise ConfigError("rerank needs a reranker: open with reranker='ltr', 'llm' or "
                                  "'cross-encoder:PATH'")
            t = time.perf_counter()
            hits = self.reranker.rerank(query, hits, depth=max(k, self.depth))[:k]
            timings["rerank"] = time.perf_counter() - t
        return SearchResult(query, store or default_store, hits, timings)

    def gather_evidence(self, query: str, *, k: int | None = None, store: str | None = None,
                        budget_tokens: int | None = None, filters: Mapping[str, Any] | None = None) -> Evidence:
        """Retrieve `depth` candidates, rerank them (if a reranker is open), then choose the evidence.

        `k=None` lets the passage selector choose a variable-size set under the token budget; an int takes the
        fixed top-k (still cut at the budget), the classic baseline.
        """
        check_query(query, self.max_query_chars)
        budget = self._check_evidence_args(k, budget_tokens)
        t0 = time.perf_counter()
        with self._reading():
            hits = self.retriever.search(query, store, max(self.depth, k or 0), filters)
        timings = {"retrieve": time.perf_counter() - t0}
        if self.reranker is not None:
            t = time.perf_counter()
            hits = self.reranker.rerank(query, hits, depth=self.depth)
            timings["rerank"] = time.perf_counter() - t
        t = time.perf_counter()
        # The selector wants scores >= 0 ranked best first; dense cosines can be negative, so shift by the minimum.
        low = min((h.score for h in hits), default=0.0)
        cands = [Candidate(h.id, h.text, h.title, h.score - min(low, 0.0)) for h in hits]
        if k is None:
            sel = select_passages(cands, budget, self.count_tokens)
        else:
            sel = select_passages(cands, budget, self.count_tokens, max_passages=k, min_passages=k, gap=1.0,
                                  min_score_ratio=0.0, redundancy=None)
        timings["select"] = time.perf_counter() - t
        by_id = {h.id: h for h in hits}
        return Evidence([by_id[c.id] for c in sel.chosen], [(c.id, why) for c, why in sel.dropped],
                        sel.tokens_used, timings)

    def _check_evidence_args(self, k: int | None, budget_tokens: int | None) -> int:
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
            raise ConfigError(f"k must be a positive int or None (let the selector choose), got {k!r}")
        budget = self.budget_tokens if budget_tokens is None else budget_tokens
        positive_int(budget, "budget_tokens")
        return budget

    def evidence(self, query: str, *, k: int | None = None) -> list[Hit]:
        """The passages `gather_evidence` chooses for `query` (what a search mode shows the generator)."""
        return self.gather_evidence(query, k=k).hits

    # ------------------------------------------------------------------ answering

    def ask(self, question: str, *, mode: str | None = None, k: int | None = None, store: str | None = None,
            max_new_tokens: int = 48, draft: str | None = None, budget_tokens: int | None = None,
            stream: bool = False, cancel: threading.Event | None = None,
            filters: Mapping[str, Any] | None = None,
            budget: Budget | Mapping[str, Any] | None = None) -> Answer | Iterator[str | Answer]:
        """Answer `question` from the index, citing passages.

        `mode`: None / "auto" lets the controller pick per question; or one of none, one_shot, iterative, chain.
        `k=None` lets the selector choose the evidence under the token budget; an int uses the fixed top-k.
        `draft` picks the speculative-decoding draft source (output is identical to plain decoding).
        With `stream=True` this returns an iterator of text deltas of the final answer as it is generated, and
        last the `Answer`; errors in the arguments are raised here, before any iterator is returned.
        `cancel`: setting this event stops the work between two decoding steps or retrievals (raises `Cancelled`);
        closing a stream's iterator early does the same, so an abandoned answer frees the model at once.
        `filters` (Haystack's filter syntax) restricts every retrieval to matching documents.
        `budget` ({"retrieval_calls": n, "seconds": s}, or a rag.control.Budget) caps this request: the controller
        picks the best mode that fits, iterative / chain stop within it; a fixed mode that cannot fit is an error.
        """
        from rag.modes import MODE_NAMES

        check_query(question, self.max_query_chars, what="question")
        positive_int(max_new_tokens, "max_new_tokens")
        self._check_evidence_args(k, budget_tokens)
        if mode is not None and mode != "auto" and mode not in MODE_NAMES:
            raise ConfigError(f"unknown mode {mode!r}: use auto or one of {', '.join(MODE_NAMES)}")
        if cancel is not None and not callable(getattr(cancel, "is_set", None)):
            raise ConfigError(f"cancel must be a threading.Event, got {type(cancel).__name__}")
        if filters is not None:
            from indexers.filters import check_filters

            check_filters(filters)  # a bad filter fails here, before any model runs
        budget = Budget.of(budget)
        if budget is not None and mode not in (None, "auto") and not budget.fits(mode):
            raise ConfigError(f"mode {mode} makes at least {MIN_CALLS[mode]} retrieval call(s), the budget allows "
                              f"{budget.retrieval_calls}: raise the budget, or use mode none or auto")
        kwargs = dict(mode=mode, k=k, store=store, max_new_tokens=max_new_tokens, draft=draft,
                      budget_tokens=budget_tokens, filters=filters, budget=budget)
        if not stream:
            return self._ask(question, cancel=cancel, **kwargs)
        return self._stream(question, kwargs, cancel if cancel is not None else threading.Event())

    def _stream(self, question: str, kwargs: dict[str, Any], cancel: threading.Event) -> Iterator[str | Answer]:
        """Run `_ask` in a worker thread and yield its token deltas as they arrive, then the Answer; an iterator
        closed (or dropped) before the end cancels the worker."""
        q: queue.Queue[tuple[str, Any]] = queue.Queue()

        def work() -> None:
            try:
                q.put(("answer", self._ask(question, on_token=lambda s: q.put(("token", s)), cancel=cancel,
                                           **kwargs)))
            except BaseException as e:  # handed to the consumer, raised there
                q.put(("error", e))

        threading.Thread(target=work, name="adarag-ask-stream", daemon=True).start()
        done = False
        try:
            while True:
                kind, item = q.get()
                if kind == "token":
                    yield item
                elif kind == "answer":
                    done = True
                    yield item
                    return
                else:
                    done = True
                    raise item
        finally:
            if not done:
                cancel.set()

    def _generate(self, messages, *, max_new_tokens: int, draft: str | None, passages: Sequence[Hit],
                  on_token: Callable[[str], None] | None, check: Callable[[], None] = lambda: None):
        gen = self.generator
        # The passages are the copy-draft source; draft=None keeps the generator's default (the fastest exact one).
        extra: dict[str, Any] = {} if draft is None else {"draft": draft}
        with self._gen_lock:
            check()  # cancelled while waiting for the model
            return gen.generate(messages, max_new_tokens=max_new_tokens, on_token=on_token,
                                passages=[passage_text(h.title, h.text) for h in passages], **extra)

    def _ask(self, question: str, *, mode: str | None, k: int | None, store: str | None, max_new_tokens: int,
             draft: str | None, budget_tokens: int | None, filters: Mapping[str, Any] | None = None,
             on_token: Callable[[str], None] | None = None, cancel: threading.Event | None = None,
             budget: Budget | None = None) -> Answer:
        from rag.modes import ModeContext, run_mode
        from rag.prompts import parse_citations

        t0 = time.perf_counter()
        gen = self.generator
        t1 = time.perf_counter()
        decision: dict[str, Any] = {}
        if mode is None or mode == "auto":
            d = self.controller.choose(question, budget)
            mode = d.mode
            decision = {"controller": self.controller_spec, "mode": d.mode, "propensity": d.propensity,
                        "scores": d.scores}
        t2 = time.perf_counter()
        gathered: list[Evidence] = []  # every retrieval's evidence, in order: drop reasons for the trace
        seen: dict[str, Hit] = {}  # every passage shown so far: the copy-draft source
        final_stats: list[Any] = []

        def check() -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled("the request was cancelled (its timeout passed or its client went away)")

        def tick(delta: str, *, final: bool) -> None:  # every accepted decoding step passes here
            check()
            if final and on_token is not None:
                on_token(delta)

        def retrieve(query: str) -> list[Hit]:
            check()
            ev = self.gather_evidence(query, k=k, store=store, budget_tokens=budget_tokens, filters=filters)
            gathered.append(ev)
            seen.update((h.id, h) for h in ev.hits)
            return ev.hits

        def generate(messages, max_new_tokens: int, *, final: bool = False):
            check()
            out = self._generate(messages, max_new_tokens=max_new_tokens, draft=draft, passages=list(seen.values()),
                                 on_token=lambda delta: tick(delta, final=final), check=check)
            if final:
                final_stats.append(getattr(out, "stats", None))
            return out

        stop = self.controller.should_stop if decision else None  # a probe may end iterative early
        limits: dict[str, Any] = {}
        if budget is not None and budget.retrieval_calls:
            limits["max_steps"] = min(ModeContext.max_steps, budget.retrieval_calls)
        if budget is not None and budget.seconds is not None:
            limits["deadline"] = t0 + budget.seconds
        res = run_mode(mode, question, ModeContext(retrieve, generate, answer_tokens=max_new_tokens, should_stop=stop,
                                                   **limits))
        t3 = time.perf_counter()
        evidence = iter(gathered)  # one per retrieval, in order: each retrieve step gains its drops and tokens
        trace: list[Step] = []
        for step in res.trace:
            ev = next(evidence, None) if isinstance(step, RetrieveStep) else None
            trace.append(step if ev is None else replace(step, dropped=tuple(map(tuple, ev.dropped)),
                                                         evidence_tokens=ev.tokens))
        if decision:
            trace.insert(0, ControllerStep(**decision, seconds=t2 - t1))
        _, cited = parse_citations(res.raw_text, [h.id for h in res.passages])
        source: Literal["model", "overlap", "none"] = "model" if cited else "none"
        if not cited:
            cited = _overlap_citations(res.answer, res.passages)
            source = "overlap" if cited else "none"
        timings = {"load_generator": t1 - t0, "controller": t2 - t1,
                   "retrieve": sum(s.seconds for s in trace if isinstance(s, RetrieveStep)),
                   "generate": sum(s.seconds for s in trace if isinstance(s, GenerateStep)), "total": t3 - t0}
        stats = final_stats[-1] if final_stats else None
        ans = Answer(question, res.answer, cited, res.passages, res.mode, timings, gen.name or self.generator_name,
                     res.n_prompt_tokens, res.n_new_tokens, source, res.raw_text, trace, res.retrieval_calls,
                     stats.to_dict() if stats is not None else {}, decision, uuid.uuid4().hex)
        self._remember(ans)
        return ans

    def _remember(self, ans: Answer) -> None:
        with self._load_lock:
            self._recent[ans.answer_id] = ans
            while len(self._recent) > _RECENT_ANSWERS:
                self._recent.popitem(last=False)

    def feedback(self, answer_id: str, correct: bool) -> float:
        """Tell the controller whether a recent answer was correct; returns the reward it learned from.

        The reward is MBA-RAG's: correct -> 1 - lambda * retrieval calls, wrong -> -1 (rag.control.base.reward).
        """
        from rag.control.base import reward

        if not isinstance(correct, bool):
            raise TypeError(f"correct must be a bool, got {type(correct).__name__}")
        with self._load_lock:
            ans = self._recent.pop(answer_id, None)
        if ans is None:
            raise NotFoundError(f"no recent answer with id {answer_id!r}: feedback applies once to each of the "
                                f"last {_RECENT_ANSWERS} answers of this RAG object")
        r = reward(correct, ans.retrieval_calls, lam=self.controller.lam)
        self.controller.update(ans.question, ans.mode, r)
        return r

    # ------------------------------------------------------------------ documents

    def add_documents(self, docs: Sequence[Document | Mapping[str, Any]]) -> dict[str, int]:
        """Add or update documents in every store, atomically: on any error the index stays as it was."""
        if isinstance(docs, (str, bytes, Mapping)) or not isinstance(docs, Sequence):
            raise TypeError("docs must be a list of Document objects or dicts with id and text")
        documents = [_as_document(d, i) for i, d in enumerate(docs)]
        if not documents:
            raise ConfigError("docs is empty: pass at least one document")
        for i, doc in enumerate(documents):  # before the query embedder loads for the rebuild
            check_document(doc, f"document {i}")
        rep = self._rebuild(documents, ())
        return {"added": rep.added, "updated": rep.updated, "unchanged": rep.unchanged,
                "n_docs": rep.manifest.n_docs, "n_passages": rep.manifest.n_passages}

    def delete_documents(self, ids: Sequence[str]) -> int:
        """Delete documents (and their passages) from every store, atomically; returns how many existed."""
        if isinstance(ids, str) or not isinstance(ids, Sequence) or not all(isinstance(i, str) for i in ids):
            raise TypeError("ids must be a list of document id strings")
        if not ids:
            return 0
        return self._rebuild([], ids).deleted

    def get_document(self, doc_id: str) -> Document | None:
        """The stored document, or None if the index has no document with that id."""
        if not isinstance(doc_id, str):
            raise TypeError(f"doc_id must be a str, got {type(doc_id).__name__}")
        with self._reading():
            found = self.index.store.get_documents([doc_id], missing="skip")
            # the document store is shared by every generation: a document only a newer one holds is not ours
            return found[0] if found and self.index.holds_document(doc_id) else None

    def _rebuild(self, documents: list[Document], delete: Sequence[str]):
        embedder = self.index.embedder(self.threads) if "dense" in self.index.stores else None
        # build_index takes the index's write lock and publishes a new generation without touching the one this
        # object reads, so searches go on during the build; only the swap to the new generation is exclusive.
        if isinstance(self.index, ShardedIndex):
            rep = build_sharded(documents, self.index.root, executor=self.index.executor, delete=delete,
                                embedder=embedder, threads=self.threads, lock_wait=self.lock_wait)
        else:
            rep = build_index(documents, self.index.root, threads=self.threads, progress=False, embedder=embedder,
                              delete=delete, lock_wait=self.lock_wait)
        self.reload(verify=False)
        return rep

    # ------------------------------------------------------------------ freshness

    @property
    def stale(self) -> bool:
        """True when a newer generation of the index is published on disk than the one this object serves."""
        return self.index.is_stale()

    @property
    def generation(self) -> int:
        """The index generation this object serves (see indexers.index_dir)."""
        return self.index.generation

    def reload(self, *, verify: bool | None = None) -> bool:
        """Open the newest published generation if it is not the one served; True if it swapped.

        Another process's add or delete becomes visible here. On failure the old generation keeps serving and
        `reload_error` says why (the service's /readyz reports it).
        """
        if not self.index.is_stale():
            return False
        stamp = _disk_stamp(self.index)
        try:  # opened (and verified) outside the lock: searches go on meanwhile
            new = self.index.reopen(verify=self.verify if verify is None else verify) \
                if isinstance(self.index, ShardedIndex) else \
                open_index(self.index.root, verify=self.verify if verify is None else verify)
        except Exception as e:
            self._failed_stamp = stamp
            self.reload_error = f"the index on disk changed and could not be loaded: {e}"
            log.error("%s; still serving generation %d", self.reload_error, self.index.generation)
            raise
        with self._index_lock.write():
            if new.stamp == self.index.stamp:  # a concurrent reload swapped the same generation in
                new.close()
                return False
            new.share_models(self.index)
            old, self.index = self.index, new
            self.retriever = Retriever(new, max_query_chars=self.max_query_chars, threads=self.threads)
            self.reload_error = None
            old.close()
            return True

    def refresh(self) -> None:
        """Reload if another writer published a newer generation; a generation that failed to load is retried
        only once the manifest changes again. Never raises: `reload_error` says what went wrong."""
        if self.index.is_stale() and _disk_stamp(self.index) != self._failed_stamp:
            try:
                self.reload()
            except Exception:  # noqa: BLE001 - logged and kept in reload_error; the old generation still answers
                pass

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Hold the read side of the index lock, first switching to a newer generation if one was published."""
        if self.auto_reload:
            self.refresh()
        with self._index_lock.read():
            yield

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> "RAG":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _open(index_dir: str | Path, verify: bool, ray: str | None, replicas: int) -> Index | ShardedIndex:
    """An ordinary index, or a sharded one (served in-process, or by Ray actors when `ray` names a cluster)."""
    if is_sharded(index_dir):
        return open_sharded(index_dir, executor=executor_for(ray), replicas=replicas, verify=verify)
    if ray is not None or replicas != 1:
        raise ConfigError(f"{index_dir} is not a sharded index: ray= and replicas= serve sharded ones (build one "
                          "with `adarag index CORPUS --out DIR --shards N`)")
    return open_index(index_dir, verify=verify)


def _disk_stamp(index: Index | ShardedIndex) -> tuple[int, int, int] | None:
    """The stamp of the manifest published on disk (a new one means a newer generation)."""
    return index.disk_stamp() if isinstance(index, ShardedIndex) else manifest_stamp(index.root)
