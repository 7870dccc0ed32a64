"""The model cache: chunk assembly + sha256 verification, atomic conversion, stale-conversion detection."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from indexers import model_cache, models
from indexers.errors import ModelError
from indexers.models import MODELS, ModelSpec

def _fake_chunk_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunks: list[bytes]
) -> ModelSpec:
    """Installs fake data-only part packages on sys.path and returns a spec pinning their assembled bytes."""
    site = tmp_path / "site"
    for i, data in enumerate(chunks, start=1):
        pkg = site / f"adarag_fake_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    whole = b"".join(chunks)
    return ModelSpec(
        name="fake-lm",
        kind="causal-lm",
        format="gguf",
        packages=tuple(f"adarag-fake-part{i}==1.0" for i in range(1, len(chunks) + 1)),
        files=tuple(f"data/part{i:02d}.bin" for i in range(1, len(chunks) + 1)),
        file_name="fake.gguf",
        sha256=hashlib.sha256(whole).hexdigest(),
        size=len(whole),
    )


def test_assemble_joins_chunks_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = [b"GGUF" + bytes(range(200)), b"second" * 50, b"tail"]
    spec = _fake_chunk_model(tmp_path, monkeypatch, chunks)
    out = model_cache.assemble_gguf(spec, tmp_path / "cache", progress=False)
    assert out.read_bytes() == b"".join(chunks)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["fake.gguf"]


def test_corrupted_chunk_is_a_sha256_mismatch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = [b"GGUF" + bytes(range(200)), b"second" * 50]
    spec = _fake_chunk_model(tmp_path, monkeypatch, chunks)
    part = models.package_files(spec)[1]
    data = bytearray(part.read_bytes())
    data[7] ^= 0xFF  # same size, one flipped byte
    part.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256") as info:
        model_cache.assemble_gguf(spec, tmp_path / "cache", progress=False)
    assert "--force-reinstall" in str(info.value)
    assert list((tmp_path / "cache").iterdir()) == []  # no temp file, no final file

    part.write_bytes(bytes(data[:-1]))
    with pytest.raises(ModelError, match="bytes, expected"):
        model_cache.assemble_gguf(spec, tmp_path / "cache", progress=False)


def test_failed_conversion_leaves_no_half_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("transformers")
    import transformers

    spec = _fake_chunk_model(tmp_path, monkeypatch, [b"GGUF-not-really", b"-a-model"])
    monkeypatch.setitem(MODELS, spec.name, spec)

    class HalfSaving:
        def parameters(self) -> list:
            return []

        def save_pretrained(self, directory: Path) -> None:
            (Path(directory) / "model-00001-of-00002.safetensors").write_bytes(b"half")
            raise OSError("disk full (simulated)")

    class FakeTokenizer:
        def save_pretrained(self, directory: Path) -> None:
            pass

    monkeypatch.setattr(
        transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: FakeTokenizer()
    )
    monkeypatch.setattr(
        transformers.AutoModelForCausalLM,
        "from_pretrained",
        lambda *a, **k: HalfSaving(),
    )
    cache = tmp_path / "cache"
    (cache / "fake-lm.incomplete").mkdir(
        parents=True
    )  # a stale leftover from an earlier crash
    with pytest.raises(OSError, match="simulated"):
        model_cache.ensure_hf_dir("fake-lm", cache=cache, progress=False)
    assert not (cache / "fake-lm").exists()
    assert not (cache / "fake-lm.incomplete").exists()
    assert not (
        cache / "gguf" / "fake.gguf"
    ).exists()  # the intermediate is removed too


def test_stale_conversion_is_not_reused(tmp_path: Path) -> None:
    """A conversion is reused only when sealed for this source (indexers.artifact), whole and of this version."""
    from indexers.artifact import seal

    spec = MODELS["qwen-0.5b"]
    out = tmp_path / spec.name
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"weights" * 100)
    seal(out, model_cache.MODEL_FORMAT, 2, {"source_sha256": "0" * 64}, manifest=model_cache.MANIFEST_NAME)
    assert not model_cache._is_current(out, spec)  # another source
    seal(out, model_cache.MODEL_FORMAT, 2, {"source_sha256": spec.sha256}, manifest=model_cache.MANIFEST_NAME)
    assert model_cache._is_current(out, spec)
    with open(out / "model.safetensors", "r+b") as f:
        f.truncate(10)
    assert not model_cache._is_current(out, spec)  # a truncated file: converted again
    (out / model_cache.MANIFEST_NAME).write_text(json.dumps({"version": 1, "source_sha256": spec.sha256}))
    assert not model_cache._is_current(out, spec)  # a conversion by an adarag before the artifact format