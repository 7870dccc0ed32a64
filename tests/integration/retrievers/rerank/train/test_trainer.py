"""retrievers.rerank.train.trainer: the query split, pair mining, a tiny real training run (the trained head ranks its
training positives above their negatives better than the untrained head), manifest checksums on load, errors,
and the `adarag reranker train --json` contract."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from indexers.errors import ConfigError, ModelError
from indexers.index import open_index
from retrievers.rerank import CrossEncoderReranker, hit_text, load_reranker
from retrievers.rerank.train.trainer import (
    MANIFEST_FILE,
    Pair,
    TrainParams,
    qrels_pairs,
    split_queries,
    teacher_pairs,
    train_reranker,
    verify_reranker_dir,
)
from tests.prereq import require

TINY = {"epochs": 2, "batch_size": 8, "max_length": 64, "lr": 2e-4, "hard_negatives": 2, "random_negatives": 1,
        "first_stage": "bm25", "candidate_depth": 10, "tune_depth": 5, "threads": 1}


def _needs() -> None:
    absent = [m for m in ("torch", "transformers", "sentence_transformers") if importlib.util.find_spec(m) is None]
    if absent:
        require(False, f"not installed: {', '.join(absent)}")


@pytest.fixture(scope="module")
def judged(hotpot_dir, hash_index):
    """(queries, qrels) of the HotpotQA questions whose supporting paragraphs are all in `hash_index`."""
    from eval.beir import load_beir

    data = load_beir(hotpot_dir)
    with open_index(hash_index) as ix:
        docs = {str(p) for p in ix.ids}
    qids = [q for q, rel in data.qrels.items() if set(rel) <= docs][:10]
    assert len(qids) >= 8
    return {q: data.queries[q] for q in qids}, {q: data.qrels[q] for q in qids}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, hash_index, judged):
    _needs()
    queries, qrels = judged
    out = tmp_path_factory.mktemp("ce") / "hp-ce"
    with open_index(hash_index) as ix:
        manifest = train_reranker(ix, out, queries=queries, qrels=qrels,
                                  params=TrainParams(**TINY, train_fraction=0.8, tune_fraction=0.25))
    return out, manifest


# --------------------------------------------------------------------------- split and pairs


def test_qrels_pairs_label_relevant_docs_and_mine_hard_negatives(hash_index, judged):
    queries, qrels = judged
    q = next(iter(queries))
    with open_index(hash_index) as ix:
        pairs, cands = qrels_pairs(ix, queries, qrels, [q], TrainParams(**TINY))
        relevant = {d for d, g in qrels[q].items() if g > 0}
        texts = {h.doc_id: h for h in cands[q]}
    pos = [p for p in pairs if p.kind == "positive"]
    hard = [p for p in pairs if p.kind == "hard"]
    assert len(pos) == len(relevant) and all(p.label == 1.0 for p in pos)
    assert len(hard) == 2 and all(p.label == 0.0 for p in hard)
    non_rel = [h for h in cands[q] if h.doc_id not in relevant][:2]  # the top non-relevant hits, in rank order
    assert [p.text for p in hard] == [hit_text(h) for h in non_rel]
    assert len([p for p in pairs if p.kind == "random"]) == 1 and texts


# --------------------------------------------------------------------------- training


def _margin(ce: CrossEncoderReranker, pairs: list[Pair]) -> tuple[float, float]:
    """(mean score(pos) - score(neg), share of (pos, neg) pairs ordered right) over same-query pairs."""
    by_q: dict[str, list[Pair]] = {}
    for p in pairs:
        by_q.setdefault(p.qid, []).append(p)
    diffs = []
    for ps in by_q.values():
        s = ce.score(ps[0].query, [p.text for p in ps])
        diffs += [a - b for pa, a in zip(ps, s) for pb, b in zip(ps, s) if pa.label == 1.0 and pb.label == 0.0]
    return float(np.mean(diffs)), float(np.mean([d > 0 for d in diffs]))


def test_trained_head_ranks_positives_above_negatives_better_than_untrained(trained, hash_index, judged,
                                                                           tmp_path):
    import torch
    import transformers

    from indexers.models import get_spec, package_files

    out, manifest = trained
    queries, qrels = judged
    train_q = [q for q in queries if q not in set(manifest["heldout_qids"])]
    with open_index(hash_index) as ix:
        pairs, _ = qrels_pairs(ix, queries, qrels, train_q, TrainParams(**TINY))
    (base,) = package_files(get_spec("minilm"))
    torch.manual_seed(0)  # the trainer's seed: the very head it started from
    fresh = transformers.AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, local_files_only=True)
    fresh.save_pretrained(tmp_path / "fresh")
    transformers.AutoTokenizer.from_pretrained(base, local_files_only=True).save_pretrained(tmp_path / "fresh")
    before = _margin(CrossEncoderReranker(tmp_path / "fresh", threads=1, max_length=64), pairs)
    ce = load_reranker(f"cross-encoder:{out}", threads=1)
    after = _margin(ce, pairs)
    assert after[0] > before[0] and after[1] >= before[1] + 0.2, (before, after)  # no-op or flipped labels fail
    assert ce.manifest is not None and ce.manifest["data"]["source"] == "qrels"


def test_manifest_records_split_params_and_checksums(trained, judged):
    out, manifest = trained
    queries, _ = judged
    _, held = split_queries(list(queries), seed=0, train_fraction=0.8)
    assert manifest["heldout_qids"] == held and len(held) == 2
    assert manifest["params"]["max_length"] == 64 and manifest["base_model"] == "minilm"
    assert "model.safetensors" in manifest["files"] and (out / "config.json").exists()
    assert 0.0 <= manifest["interpolation"]["weight"] <= 1.0
    assert verify_reranker_dir(out)["files"] == manifest["files"]
    assert not list(out.parent.glob("*incomplete*"))  # the staging dir was swapped into place


def test_corrupt_weights_are_refused_on_load(trained, tmp_path):
    out, _ = trained
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    weights = bad / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-100] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="corrupt.*--force"):
        load_reranker(f"cross-encoder:{bad}", threads=1).warm_up()


def test_listwise_ict_then_qrels_ranks_ict_positives_first_better_than_untrained(hash_index, judged, tmp_path):
    """ICT groups from the corpus, then the qrels groups, listwise: the trained model puts each ICT positive
    (the passage a sentence was cut from) above its hard negatives more often than the fresh head does."""
    _needs()
    import torch
    import transformers

    from indexers.models import get_spec, package_files
    from retrievers.rerank.train.ict import ict_groups

    queries, qrels = judged
    params = TrainParams(**{**TINY, "hard_negatives": 3, "epochs": 1}, loss="listwise", pseudo_queries=24,
                         ict_epochs=3, train_fraction=0.8, tune_fraction=0.25)
    with open_index(hash_index) as ix:
        manifest = train_reranker(ix, tmp_path / "lw", queries=queries, qrels=qrels, params=params)
        groups = ict_groups(ix, 24, 3, seed=0)  # the same seeded groups it trained on
    m = manifest["metrics"]
    assert manifest["data"]["ict_groups"] == 24 and manifest["data"]["qrels_groups"] > 0
    assert m["ict"]["group_size"] == 4 and m["ict"]["last_epoch_loss"] < m["ict"]["uniform_loss"]
    assert manifest["data"]["pairs"] == 4 * (24 + manifest["data"]["qrels_groups"])

    def top1(ce: CrossEncoderReranker) -> float:
        return float(np.mean([int(np.argmax(ce.score(g.query, [g.positive, *g.negatives]))) == 0 for g in groups]))

    (base,) = package_files(get_spec("minilm"))
    torch.manual_seed(0)
    fresh = transformers.AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, local_files_only=True)
    fresh.save_pretrained(tmp_path / "fresh")
    transformers.AutoTokenizer.from_pretrained(base, local_files_only=True).save_pretrained(tmp_path / "fresh")
    before = top1(CrossEncoderReranker(tmp_path / "fresh", threads=1, max_length=64))
    after = top1(load_reranker(f"cross-encoder:{tmp_path / 'lw'}", threads=1))
    assert after >= before + 0.25 and after >= 0.6, (before, after)


# --------------------------------------------------------------------------- errors


def test_bad_inputs_get_clear_errors(trained, hash_index, judged):
    out, _ = trained
    queries, qrels = judged
    with open_index(hash_index) as ix:
        with pytest.raises(ConfigError, match="exists.*--force"):
            train_reranker(ix, out, queries=queries, qrels=qrels)
        with pytest.raises(ConfigError, match="none of the .* judged query ids"):
            train_reranker(ix, out.parent / "x", queries={"nope": "who?"}, qrels=qrels)
        with pytest.raises(ConfigError, match="no training data"):
            train_reranker(ix, out.parent / "y")
        with pytest.raises(ConfigError, match="not both"):
            train_reranker(ix, out.parent / "y", queries=queries, qrels=qrels, teacher="llm")
        with pytest.raises(ConfigError, match="--loss bce with --teacher"):
            train_reranker(ix, out.parent / "y", teacher="llm", params=TrainParams(loss="listwise"))
        with pytest.raises(ConfigError, match="unknown teacher"):
            teacher_pairs(ix, "monot5", TrainParams(**TINY), 4)
    empty = SimpleNamespace(ids=np.array([], dtype=object), root=Path("empty-index"))
    with pytest.raises(ConfigError, match="is empty"):
        qrels_pairs(empty, queries, qrels, list(queries), TrainParams(**TINY))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_length"):
        TrainParams(max_length=8)
    with pytest.raises(ConfigError, match="unknown loss"):
        TrainParams(loss="hinge")
    with pytest.raises(ConfigError, match="--loss listwise"):
        TrainParams(pseudo_queries=10)


# --------------------------------------------------------------------------- CLI


def test_cli_json_shape_and_error(hash_index, judged, tmp_path, capsys):
    _needs()
    from services.cli import main

    queries, qrels = judged
    (tmp_path / "qrels").mkdir()
    with open(tmp_path / "qrels" / "test.tsv", "w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        f.writelines(f"{q}\t{d}\t{g}\n" for q, rel in list(qrels.items())[:4] for d, g in rel.items())
    with open(tmp_path / "queries.jsonl", "w") as f:
        f.writelines(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    args = ["reranker", "train", "--index", str(hash_index), "--qrels", str(tmp_path / "qrels" / "test.tsv"),
            "--out", str(tmp_path / "ce"), "--epochs", "1", "--max-length", "64", "--max-pairs", "8",
            "--first-stage", "bm25", "--threads", "1", "--json"]
    assert main(args) == 0
    obj = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert obj["data"]["source"] == "qrels" and obj["data"]["pairs"] == 8 and obj["heldout_queries"] == 2
    assert obj["out"] == str(tmp_path / "ce") and (tmp_path / "ce" / MANIFEST_FILE).exists()
    assert main(args) == 2  # --out exists, no --force
    err = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert err["type"] == "ConfigError" and "--force" in err["error"]


@pytest.mark.slow
def test_teacher_distillation_with_a_real_llm(hash_index, tmp_path):
    """The teacher writes questions and labels candidates with P(yes); soft targets in [0, 1] reach the manifest."""
    _needs()
    with open_index(hash_index) as ix:
        m = train_reranker(ix, tmp_path / "ce", teacher="llm:smollm-135m",
                           params=TrainParams(**{**TINY, "teacher_candidates": 3, "max_pairs": 6}))
    assert m["data"]["source"] == "teacher" and m["data"]["pairs"] == 6 and m["data"]["pseudo_queries"] >= 2
    assert 0.0 < m["data"]["mean_label"] < 1.0 and m["heldout_qids"] == []
    assert load_reranker(f"cross-encoder:{tmp_path / 'ce'}", threads=1).score("a question?", ["x"])[0] > 0


def test_interpolation_is_a_reranker_option(trained):
    from indexers.types import Hit

    out, manifest = trained
    hits = [Hit(id=f"p{i}", score=1.0 / (i + 1), title=f"T{i}", text=t) for i, t in
            enumerate(["Bread is baked.", "Paris is in France.", "The Eiffel Tower was completed in 1889."])]
    keep = CrossEncoderReranker(out, threads=1, interpolate=0.0).rerank("When was the Eiffel Tower built?", hits, 3)
    assert [h.id for h in keep] == ["p0", "p1", "p2"]  # weight 0: the first stage's order
    tuned = CrossEncoderReranker(out, threads=1)
    tuned.warm_up()
    assert tuned.interpolate == manifest["interpolation"]["weight"]  # None: the weight tuned at training time
    assert tuned.max_length == manifest["params"]["max_length"] == 64  # None: the length it was trained at
    explicit = CrossEncoderReranker(out, threads=1, max_length=48)
    explicit.warm_up()
    assert explicit.max_length == 48  # an explicit length wins
    with pytest.raises(ConfigError, match="interpolate"):
        CrossEncoderReranker(out, interpolate=2.0)
