"""The exactness check every executor runs: a sharded index answers like one index over the same writes."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from indexers.dense import DenseParams
from indexers.embedders import HashEmbedder
from indexers.index import BuildParams, build_index, open_index
from indexers.ngram import NgramParams
from indexers.shards import build_sharded, open_sharded
from indexers.types import Document
from retrievers.search import Retriever
from tests.support.data import TOKENIZER

# small segments so writes merge; short passages so long documents split into several
PARAMS = BuildParams(dense=DenseParams(embedder="hash"), ngram=NgramParams(tokenizer=TOKENIZER), passage_words=40,
                     passage_overlap=10, segment_passages=60, max_segments=3)
EMBEDDER = HashEmbedder(64)
STORES = ("bm25", "dense", "ngram", "fused", "bm25+ngram", "bm25+dense+ngram")
_WORDS = [f"w{i}" for i in range(120)] + ["iliad", "homer", "odyssey", "troy", "sea"]


def corpus(n: int = 240, seed: int = 0) -> list[Document]:
    """Synthetic documents: Zipf-ish words, some long (split), some exact duplicates (score ties)."""
    rnd = random.Random(seed)
    weights = [1.0 / (i + 1) for i in range(len(_WORDS))]
    docs = []
    for i in range(n):
        words = rnd.choices(_WORDS, weights, k=rnd.choice([6, 15, 30, 90]))
        docs.append(Document(id=f"d{i:04d}", title=f"title {i % 9}", text=" ".join(words),
                             metadata={"year": 1900 + i % 50}))
    for i in range(0, n, 37):  # twins: same title and text, so equal scores in every store
        docs.append(Document(id=f"twin{i}", title=docs[i].title, text=docs[i].text, metadata={"year": 2000}))
    return docs


def queries(seed: int = 1, n: int = 12) -> list[str]:
    rnd = random.Random(seed)
    return [" ".join(rnd.choices(_WORDS[:40] + _WORDS[-5:], k=rnd.randint(1, 5))) for _ in range(n)] + [
        "homer iliad troy", "the wine dark sea"]


def writes(docs: list[Document]) -> list[tuple[list[Document], list[str]]]:
    """A build, then adds with new, changed and unchanged documents, then deletes (some unknown)."""
    half = len(docs) // 2
    changed = [Document(id=d.id, title=d.title, text=d.text + " odyssey", metadata=d.metadata) for d in docs[:20:3]]
    retitled = [Document(id=d.id, title=d.title, text=d.text, metadata={"year": 1}) for d in docs[30:34]]
    return [(docs[:half], []), (docs[half:] + changed + retitled + docs[40:45], []),
            ([], [d.id for d in docs[5:60:4]] + ["no-such-doc"]), (docs[60:62], [docs[70].id])]


def assert_same(one, sharded, store: str, qs: list[str], k: int = 10, filters=None) -> None:
    """ids and scores equal, bit for bit, for every query."""
    a = Retriever(one).rows_batch(qs, store, k, filters)
    b = Retriever(sharded).rows_batch(qs, store, k, filters)
    for q, (ra, sa), (rb, sb) in zip(qs, a, b):
        ids_a, ids_b = [str(one.ids[r]) for r in ra.tolist()], [str(sharded.ids[r]) for r in rb.tolist()]
        assert ids_a == ids_b, (store, q, ids_a, ids_b)
        assert np.asarray(sa).tobytes() == np.asarray(sb).tobytes(), (store, q, sa, sb)


def check_exact(tmp: Path, n_shards: int, executor, build_steps: tuple[int, ...] = (0, 1, 2, 3)) -> None:
    """After each write: every store, fused ones and a filter agree with one index. Writes whose step is not
    in `build_steps` run in-process (to keep a slow executor's test short); every search runs on `executor`."""
    from indexers.shards import LocalExecutor

    one_dir, sh_dir = tmp / "one", tmp / "sharded"
    qs = queries()
    for step, (docs, delete) in enumerate(writes(corpus())):
        build_index(docs, one_dir, PARAMS, embedder=EMBEDDER, progress=False, delete=delete)
        build_sharded(docs, sh_dir, n_shards, PARAMS, executor=executor if step in build_steps else LocalExecutor(),
                      embedder=EMBEDDER, delete=delete)
        with open_index(one_dir) as one, open_sharded(sh_dir, executor=executor) as sh:
            one.encoders.share(_with_embedder())
            sh.encoders.share(_with_embedder())
            assert len(sh.live_rows()) == len(one.live_rows()) == one.manifest.n_passages
            for store in STORES:
                assert_same(one, sh, store, qs)
            flt = {"field": "meta.year", "operator": ">=", "value": 1930}
            assert_same(one, sh, "bm25+dense+ngram", qs[:4], 5, flt)
            hits_a = Retriever(one).search(qs[0], "fused", 5)
            hits_b = Retriever(sh).search(qs[0], "fused", 5)
            assert hits_a == hits_b, step


def _with_embedder():
    from indexers.stores.encoders import Encoders

    return Encoders(PARAMS.dense, PARAMS.ngram, embedder=EMBEDDER)
