import pytest

from rag import RAG, ConfigError, IndexFormatError


def test_open_errors_are_clear(tmp_path):
    with pytest.raises(IndexFormatError, match="adarag index CORPUS --out"):
        RAG.open(tmp_path / "nope")
    with pytest.raises(ConfigError, match="index_dir must be"):
        RAG.open(123)
    with pytest.raises(ConfigError, match="generator must be"):
        RAG.open(tmp_path, generator=5)
