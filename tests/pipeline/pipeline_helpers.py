"""Helpers of the pipeline tests: a curated synthetic corpus and how to make one, and a
fake encoder that records every text it encodes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Curated:
    corpus: Any  # batchcraft.synth.SynthCorpus
    config: Any  # CurateConfig
    manifest: dict[str, Any]
    out: Path

    def rows(self) -> pa.Table:
        return pq.read_table(self.out / "data").sort_by("id")

    def rejects(self) -> pa.Table:
        return pq.read_table(self.out / "rejects")


def curate_synth(spark: Any, corpus: Any, out: Path, **overrides: Any) -> Curated:
    from batchcraft.pipeline import curate
    from batchcraft.pipeline.config import CurateConfig

    params: dict[str, Any] = {
        "id_column": "id",
        "pair_column": "answer",
        "label_column": "topic",
        "reference_scores": "pairs",
        "concepts_file": str(corpus.concepts_path),
        "write_report": False,
        "num_clusters": 8,
        "num_shards": 2,
    }
    params.update(overrides)
    config = CurateConfig(
        inputs=(str(corpus.out_dir / "corpus"), str(corpus.out_dir / "bad")), out=str(out), **params
    )
    return Curated(corpus, config, curate(config, spark=spark), out)


def recording_encoder(log_dir: Path, dimension: int = 16) -> Callable[[Any], Any]:
    """A stand-in for `sentence_encoder.cached_encoder` whose encoder writes each batch of
    texts it encodes to a new file in ``log_dir`` (read them back with `encoded_texts`).

    Its vectors are unit-norm, random and a pure function of the text. Everything it needs
    is defined inside this function: Spark then ships it to the executors' Python workers
    by value (they cannot import this test module), and their counts meet on disk.
    """
    import hashlib
    import uuid

    class RecordingEncoder:
        def encode(self, texts: list[str]) -> np.ndarray:
            (log_dir / f"{uuid.uuid4().hex}.json").write_text(json.dumps(texts))
            vectors = np.zeros((len(texts), dimension), dtype=np.float32)
            for row, text in enumerate(texts):
                seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
                vectors[row] = np.random.default_rng(seed).normal(size=dimension)
            return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def cached_encoder(spec: Any) -> RecordingEncoder:
        return RecordingEncoder()

    return cached_encoder


def encoded_texts(log_dir: Path) -> list[str]:
    """Every text a `recording_encoder` encoded, once per time it was encoded."""
    return [text for path in log_dir.glob("*.json") for text in json.loads(path.read_text())]
