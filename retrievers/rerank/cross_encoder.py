"""A cross-encoder reranker: any local Hugging Face sequence-classification / sentence-transformers CrossEncoder
directory, and the checksummed format of the ones `adarag reranker train` writes (verified on load)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from indexers.errors import ConfigError, ModelError
from indexers.artifact import open_verified
from indexers.models import pick_device, set_threads
from indexers.types import Hit
from retrievers.rerank.base import (
    DEFAULT_DEPTH,
    RerankerBase,
    check_depth,
    check_texts,
    hit_text,
    interpolate_scores,
    length_batches,
    require_torch,
    rerank_hits,
)

__all__ = ["CrossEncoderReranker", "FORMAT", "FORMAT_VERSION", "MANIFEST_FILE", "cross_encoder_dir",
           "verify_reranker_dir"]


MANIFEST_FILE = "adarag_reranker.json"
FORMAT = "adarag-cross-encoder"
FORMAT_VERSION = 2  # 1: bare sha256 per file under "sha256", no manifest checksum


def verify_reranker_dir(path: str | Path) -> dict[str, Any]:
    """The manifest of a trained reranker dir, after checking its format and every file's size and sha256
    (indexers.artifact; an ArtifactError, which is a ModelError, says what to do)."""
    return open_verified(path, FORMAT, (1, FORMAT_VERSION), manifest=MANIFEST_FILE,
                         fix=f"retrain with `adarag reranker train ... --out {path} --force`")


class CrossEncoderReranker(RerankerBase):
    """A sequence-classification model from a local dir; query and passage read as one pair, batched.

    One logit -> sigmoid, two or more -> softmax's last class. Truncation is `only_second`: the passage is
    cut to the model's max length, the query never (a query too long for the model is a ConfigError).
    A dir trained by `adarag reranker train` is checksum-verified on load; `interpolate` = w ranks by
    w * CE + (1 - w) * first-stage score (each min-max scaled per query); None takes the weight the trainer
    tuned on its tuning queries (1.0, CE alone, when there is none), and max_length None its training length.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None, batch_size: int = 32,
                 device: str | None = None, max_length: int | None = None,
                 interpolate: float | None = None) -> None:
        path = cross_encoder_dir(path)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.path = path
        self.name = f"cross-encoder:{path}"
        self.threads = threads
        self.batch_size = batch_size
        self.device = device
        self.max_length = max_length
        if interpolate is not None and not 0.0 <= interpolate <= 1.0:
            raise ConfigError(f"interpolate must be in [0, 1] (1 = cross-encoder only), got {interpolate}")
        self.interpolate = interpolate
        self.manifest: dict[str, Any] | None = None
        self.model: Any = None
        self.tokenizer: Any = None

    def warm_up(self) -> None:
        if self.model is not None:
            return
        require_torch()
        import transformers

        if (self.path / MANIFEST_FILE).exists():  # adarag's own: refuse a corrupt or half-copied dir
            self.manifest = verify_reranker_dir(self.path)
            if self.interpolate is None:
                self.interpolate = (self.manifest.get("interpolation") or {}).get("weight")
            if self.max_length is None:  # score at the length it was trained and its weight tuned at
                self.max_length = (self.manifest.get("params") or {}).get("max_length")

        set_threads(self.threads)
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            self.model = transformers.AutoModelForSequenceClassification.from_pretrained(
                self.path, local_files_only=True)
        except (OSError, ValueError) as error:
            raise ModelError(f"could not load a cross-encoder from {self.path}: {error}") from error
        self.model.to(pick_device(self.device)).eval()
        limits = [self.max_length, getattr(self.model.config, "max_position_embeddings", None)]
        if self.tokenizer.model_max_length and self.tokenizer.model_max_length < 100_000:
            limits.append(self.tokenizer.model_max_length)
        self.max_length = min(x for x in limits if x) if any(limits) else 512

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        texts = check_texts(query, texts)
        if not texts:
            return []
        self.warm_up()
        torch = require_torch()
        n_query = len(self.tokenizer.encode(query, add_special_tokens=False))
        if n_query + 8 > self.max_length:
            raise ConfigError(f"the query is {n_query} tokens; {self.name} reads at most {self.max_length} per "
                              "pair and never cuts the query: shorten it")
        out: list[float] = [0.0] * len(texts)
        with torch.inference_mode():
            for idx in length_batches([len(t) for t in texts], self.batch_size):
                enc = self.tokenizer([query] * len(idx), [texts[i] for i in idx], truncation="only_second",
                                     max_length=self.max_length, padding=True, return_tensors="pt")
                enc = {k: v.to(self.model.device) for k, v in enc.items()}
                logits = self.model(**enc).logits.float()  # [b, n_labels]
                probs = logits[:, 0].sigmoid() if logits.shape[1] == 1 else logits.softmax(-1)[:, -1]
                for j, i in enumerate(idx):
                    out[i] = float(probs[j])
        return out

    def rerank(self, query: str, hits: Sequence[Hit], depth: int = DEFAULT_DEPTH) -> list[Hit]:
        """As `RerankerBase.rerank`, mixing in the first-stage scores when the interpolation weight is below 1."""
        depth = check_depth(depth)
        head = list(hits[:depth])
        scores = self.score(query, [hit_text(h) for h in head]) if head else []  # warms up: sets interpolate
        w = 1.0 if self.interpolate is None else float(self.interpolate)
        if head and w < 1.0:
            scores = interpolate_scores([h.score for h in head], scores, w)
        return rerank_hits(hits, scores, depth)


def cross_encoder_dir(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not (path / "config.json").exists():
        raise ConfigError(f"{path} is not a cross-encoder directory (no config.json): pass a Hugging Face "
                          "sequence-classification / sentence-transformers CrossEncoder dir, e.g. one made by "
                          "`adarag reranker train`")
    return path
