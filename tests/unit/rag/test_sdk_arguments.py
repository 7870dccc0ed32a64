"""RAG.open / RAG(...) argument checks and add_documents input checks (issue #16): every argument is checked
at once, before the index is opened (checksummed) or any model loads; specs are resolved, not loaded.
No model is loaded here: `open_index` and `Generator.load` are replaced by functions that fail the test."""

import pytest

from indexers.errors import ConfigError, IndexFormatError
from rag.sdk import RAG
from tests.support.rag_sdk_arguments import nothing_heavy  # noqa: F401 (fixtures)


def test_index_dir_type_is_checked_too(nothing_heavy):
    with pytest.raises(ConfigError, match="index_dir must be a str or Path"):
        RAG.open(["my-index"])


def test_a_missing_index_is_still_an_index_format_error(tmp_path):
    with pytest.raises(IndexFormatError, match="adarag index CORPUS --out"):
        RAG.open(tmp_path / "nope", threads=1)


# --------------------------------------------------------------------------- add_documents
