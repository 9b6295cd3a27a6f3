"""Helpers of the pipeline tests: a curated synthetic corpus and how to make one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
