"""RAG.open / RAG(...) argument checks and add_documents input checks (issue #16): every argument is checked
at once, before the index is opened (checksummed) or any model loads; specs are resolved, not loaded.
No model is loaded here: `open_index` and `Generator.load` are replaced by functions that fail the test."""
import shutil

import pytest

from indexers.errors import ConfigError, CorpusError
from indexers.index import open_index
from rag.options import MAX_THREADS
from rag.sdk import RAG
from tests.support.rag_sdk_arguments import nothing_heavy  # noqa: F401 (fixtures)


@pytest.mark.parametrize("kwargs, words", [
    ({"threads": "2"}, "threads must be a positive int from 1 to 1,024, got str '2'; or None"),  # was accepted
    ({"threads": 0}, "threads must be a positive int"),
    ({"threads": MAX_THREADS + 1}, "threads must be a positive int"),
    ({"threads": True}, "threads must be a positive int"),
    ({"threads": 2.0}, "threads must be a positive int"),
    ({"verify": "no"}, "verify must be True or False"),
    ({"auto_reload": 1}, "auto_reload must be True or False"),
    ({"lock_wait": -1}, "lock_wait must be seconds >= 0"),
    ({"lock_wait": float("inf")}, "lock_wait must be seconds >= 0"),
    ({"lock_wait": "60"}, "lock_wait must be seconds >= 0"),
    ({"max_query_chars": 0}, "max_query_chars must be a positive int"),
    ({"budget_tokens": "700"}, "budget_tokens must be a positive int"),
    ({"depth": -1}, "depth must be a positive int"),
    ({"generator": "no-such-model"}, "unknown model 'no-such-model'.*qwen-1.5b"),
    ({"generator": "minilm"}, "is a embedder, but a causal-lm is needed"),
    ({"generator": 5}, "generator must be a model name"),
    ({"reranker": "monot5"}, "unknown reranker 'monot5'.*ltr:DIR"),
    ({"reranker": "llm:no-such-model"}, "unknown model 'no-such-model'"),  # was found after loading the generator
    ({"reranker": "cross-encoder:/no/such/dir"}, "no config.json"),
    ({"reranker": "ltr:/no/such/dir"}, "not found: train one"),
    ({"reranker": None}, "reranker spec must be a non-empty str"),
    ({"controller": "smart"}, "unknown controller 'smart'.*bandit"),
    ({"controller": 3}, "controller must be a non-empty str"),
])
def test_each_bad_argument_fails_before_anything_opens(nothing_heavy, hash_index, kwargs, words):
    with pytest.raises(ConfigError, match=words):
        RAG.open(hash_index, **kwargs)


def test_a_folder_without_a_policy_is_not_a_controller(nothing_heavy, hash_index, tmp_path):
    with pytest.raises(ConfigError, match="is not a policy directory.*controller train"):
        RAG.open(hash_index, controller=str(tmp_path))


def test_all_bad_arguments_are_listed_at_once(nothing_heavy, hash_index):
    with pytest.raises(ConfigError) as e:
        RAG.open(hash_index, threads="2", generator="nope", reranker="bogus", controller="smart", depth=0)
    msg = str(e.value)
    assert msg.startswith("5 bad arguments: (1) ")
    for words in ("threads must", "unknown model 'nope'", "depth must", "unknown reranker", "unknown controller"):
        assert words in msg


def test_good_arguments_open_without_loading_a_model(hash_index, monkeypatch):
    import rag.generator

    monkeypatch.setattr(rag.generator.Generator, "load", lambda *a, **k: pytest.fail("loaded the generator"))
    for kwargs in ({}, {"threads": 2, "reranker": "none", "controller": "iterative", "verify": False},
                   {"threads": None, "reranker": "llm:smollm-135m", "controller": "bandit", "generator": "qwen-0.5b"}):
        with RAG.open(hash_index, **kwargs) as r:
            assert not r.ready


def test_the_constructor_checks_the_same_arguments(hash_index):
    with open_index(hash_index, verify=False) as ix:
        with pytest.raises(ConfigError, match="threads must be a positive int"):
            RAG(ix, threads="2")
        with pytest.raises(ConfigError, match="unknown reranker"):
            RAG(ix, reranker="bogus")


# --------------------------------------------------------------------------- add_documents


@pytest.fixture()
def writable(hash_index, tmp_path):
    root = tmp_path / "ix"
    shutil.copytree(hash_index, root)
    with RAG.open(root, generator="smollm-135m", reranker="none", verify=False) as r:
        yield r


@pytest.mark.parametrize("metadata", ["a note", 5, 2.5, ["a", "list"], True])
def test_metadata_that_is_not_a_dict_is_a_config_error(writable, metadata):
    n0 = writable.index.manifest.n_docs
    with pytest.raises(ConfigError, match=r"document 0 \('m1'\): metadata must be a dict"):  # was ValueError / TypeError
        writable.add_documents([{"id": "m1", "text": "some text", "metadata": metadata}])
    assert writable.index.manifest.n_docs == n0


@pytest.mark.parametrize("doc_id", ["n\x00ul", "tab\tbed", "d#3"])
def test_unusable_ids_are_refused_before_the_rebuild(writable, monkeypatch, doc_id):
    monkeypatch.setattr(type(writable.index), "embedder",
                        lambda *a, **k: pytest.fail("loaded the query embedder for a batch that cannot be added"))
    with pytest.raises(CorpusError, match=r"document 1: document id"):
        writable.add_documents([{"id": "fine", "text": "ok"}, {"id": doc_id, "text": "bad id"}])
    assert writable.get_document("fine") is None
