"""The manifest record of a curation run: what was read, how each stage was parametrised,
what came out (`batchcraft.dataset.manifest` writes it and reads it back).

Built from plain values only (no Spark), one function per manifest section, so that the
record of a run can be read here in the order it appears in ``manifest.json``.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

from batchcraft import __version__
from batchcraft.dataset.schema import SCHEMA_VERSION
from batchcraft.pipeline.config import CurateConfig
from batchcraft.pipeline.embedding.sentence_encoder import EncoderSpec, model_name
from batchcraft.pipeline.minhash.settings import MinhashSettings
from batchcraft.pipeline.read.column_plan import ColumnPlan
from batchcraft.pipeline.read.inputs import InputFile
from batchcraft.pipeline.scores.pairwise import LOSS_FORMULA, ROWS_PER_SCORE_GROUP

if TYPE_CHECKING:  # cluster.stage imports pyspark; the manifest needs only the fit's values
    from batchcraft.pipeline.cluster.stage import KMeansFit


def build_manifest(
    config: CurateConfig,
    files: list[InputFile],
    minhash_counts: dict[str, int] | None,
    accounting: dict[str, Any],
    shards: list[dict[str, Any]],
    dimension: int,
    kmeans: KMeansFit,
    spec: EncoderSpec | None,
    vocabulary: list[str] | None,
    timings: dict[str, float],
    columns: ColumnPlan,
) -> dict[str, Any]:
    """The manifest of a finished run (see DESIGN.md, "The curated dataset contract").

    Args:
        config: The run's configuration.
        files: The inputs read.
        minhash_counts: What MinHash near dedup found (None when it did not run).
        accounting: Row counts per stage and source (`accounting.account`).
        shards: Path, rows and kept rows of each written shard.
        dimension: Length of the stored embeddings.
        kmeans: The k-means fit (its centroids and the rows it trained on).
        spec: The encoder used; None for precomputed embeddings.
        vocabulary: The zero-shot concept vocabulary, if any.
        timings: Seconds per stage.
        columns: The input columns kept beside those the job reads.
    """
    return {
        "schema_version": SCHEMA_VERSION,
        "created_by": f"batchcraft {__version__}",
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "num_rows": sum(s["num_rows"] for s in shards),
        "num_kept": sum(s["num_kept"] for s in shards),
        "has_pairs": config.pair_column is not None,
        "embedding": _embedding(config, dimension, spec),
        "near_dedup": _near_dedup(config, minhash_counts),
        "clustering": _clustering(config, kmeans),
        "semantic_dedup": _semantic_dedup(config),
        "concepts": _concepts(config, vocabulary),
        "columns": _columns(config, columns),
        "counts": accounting,
        "timings": timings,
        "parameters": config.to_dict(),
        "inputs": [_input(f) for f in files],
        "shards": shards,
        "environment": {"python": sys.version.split()[0], "spark_master": config.master},
    }


def _embedding(config: CurateConfig, dimension: int, spec: EncoderSpec | None) -> dict[str, Any]:
    return {
        "model": "precomputed" if config.embedding_column else model_name(config.model),
        "model_path": spec.model_path if spec else None,
        "dim": dimension,
        "dtype": config.embedding_dtype,
        "precision": spec.precision if spec else None,
        "normalized": True,
    }


def _near_dedup(config: CurateConfig, counts: dict[str, int] | None) -> dict[str, Any]:
    """MinHash's parameters, its S-curve and what it found (pairs, groups), or method none."""
    if config.near_dedup != "minhash" or counts is None:
        return {"method": "none"}
    settings = MinhashSettings.from_config(config)
    return {**settings.to_dict(), "keep_policy": config.keep_policy, **counts}


def _clustering(config: CurateConfig, kmeans: KMeansFit) -> dict[str, Any]:
    """The k-means parameters; ``sample_size`` is the rows it trained on: the hash sample
    only approximates the requested size."""
    return {
        "num_clusters": len(kmeans.centroids),
        "sample_size": kmeans.sample_size,
        "requested_sample_size": config.kmeans_sample_size,
        "iterations": config.kmeans_iterations,
        "algorithm": "faiss spherical k-means",
        "seed": config.seed,
    }


def _semantic_dedup(config: CurateConfig) -> dict[str, Any]:
    return {
        "eps": config.eps,
        "threshold": config.threshold,
        "near_threshold": config.near_threshold,
        "keep_policy": config.keep_policy,
        "second_cluster": config.second_cluster,
    }


def _concepts(config: CurateConfig, vocabulary: list[str] | None) -> dict[str, Any]:
    return {
        "mode": "zero-shot" if vocabulary else ("column" if config.concept_column else "none"),
        "vocabulary": vocabulary,
        "threshold": config.concept_threshold,
    }


def _columns(config: CurateConfig, columns: ColumnPlan) -> dict[str, Any]:
    """The input columns the dataset keeps (``extra``: user columns under their own names,
    with their Arrow types), leaves out, maps to ``label``, and where ``ref_loss`` is from."""
    label = columns.label
    return {
        "extra": [{"name": kept.name, "type": str(kept.type)} for kept in columns.user_columns],
        "dropped": list(columns.dropped),
        "label": None if label is None else {"column": label.column, "type": str(label.type)},
        "ref_loss": _ref_loss(config),
    }


def _ref_loss(config: CurateConfig) -> dict[str, Any] | None:
    """Where ``ref_loss`` comes from: an input column, the pair scores (with their
    parameters, `batchcraft.pipeline.scores.pairwise`), or nowhere (None)."""
    if config.ref_loss_column:
        return {"from": "column", "column": config.ref_loss_column}
    if config.reference_scores != "pairs":
        return None
    return {
        "from": "pairs",
        "loss": LOSS_FORMULA,
        "logit_scale": config.reference_logit_scale,
        "logit_bias": config.reference_logit_bias,
        "negatives": config.reference_negatives,
        "rows_per_group": ROWS_PER_SCORE_GROUP,
        "seed": config.seed,
    }


def _input(file: InputFile) -> dict[str, Any]:
    return {
        "path": file.path,
        "format": file.format,
        "source": file.source,
        "bytes": file.bytes,
        "sha256": file.sha256,
    }
