"""The curation job's steps: each runs one stage on the job's frames, caches what later
steps read (`PersistedFrames.keep`) and records the stage's counts.

`job._run` calls them in order and releases each frame once no later step reads it; the
stage functions themselves (`stages`) know nothing of the job's caching or counters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batchcraft.dataset import layout
from batchcraft.errors import InputError
from batchcraft.pipeline import stages
from batchcraft.pipeline.accounting import account, check_balanced
from batchcraft.pipeline.config import CurateConfig, default_num_clusters
from batchcraft.pipeline.encoder import EncoderSpec, cached_encoder, resolve_precision
from batchcraft.pipeline.frames import PersistedFrames
from batchcraft.pipeline.inputs import InputFile, plan_chunks
from batchcraft.pipeline.parse import ColumnMapping
from batchcraft.pipeline.write_stage import with_exact_duplicates, write_rejects, write_rows

ROWS_PER_EMBED_PARTITION = 2000
_PARSE_ONLY_COLUMNS = ("file_index", "record", "reason", "detail", "raw", "dedup_key")
# Kept to the end of the job: every parsed record's outcome (accounting, rejects files) ...
_OUTCOME_COLUMNS = ("file_index", "record", "source", "id", "reason", "detail", "raw")
# ... and the exact duplicates, which take their representative's vectors when written.
_DUPLICATE_COLUMNS = ("id", "text", "pair_text", "source", "dup_of", "dup_kind")


def read_and_validate(
    spark: SparkSession,
    config: CurateConfig,
    files: list[InputFile],
    frames: PersistedFrames,
    counts: dict[str, int],
) -> tuple[DataFrame, DataFrame]:
    """One row per input record, rejected ones with their reason; and the cached parse
    it derives from (release both once the records are no longer read)."""
    mapping = ColumnMapping(
        config.text_column,
        config.id_column,
        config.pair_column,
        config.concept_column,
        config.embedding_column,
        config.max_text_bytes,
    )
    # Cached and counted first: a shuffle's partition count is fixed when its frame is
    # cached, so the duplicate-id window must be built after `scale_shuffles`.
    parsed = frames.keep(stages.read_corpus(spark, plan_chunks(files), mapping))
    counts["rows"] = parsed.count()
    if counts["rows"] == 0:
        raise InputError(f"the inputs {[f.path for f in files]} hold no records")
    frames.scale_shuffles(counts["rows"])
    raw = parsed
    if config.embedding_column:
        dimension = stages.embedding_dimension(parsed)
        if dimension is not None:
            raw = stages.reject_wrong_dimension(raw, dimension)
    if config.id_column:  # a shuffle: cache its result rather than redo it for every reader
        raw = frames.keep(stages.reject_duplicate_ids(raw, files))
        raw.count()
        frames.release(parsed)
    return raw, parsed


@dataclass(frozen=True)
class Unique:
    """What the exact-dedup stage leaves to the later stages.

    Attributes:
        representatives: The valid rows that are no exact duplicate (to embed).
        num_rows: How many there are.
        outcomes: One row per parsed record: its source, id and reject reason (small, cached).
        duplicates: The exact duplicates, written with their representative's vectors.
        marked: The valid rows with ``dup_of`` (cached; release once embedded).
    """

    representatives: DataFrame
    num_rows: int
    outcomes: DataFrame
    duplicates: DataFrame
    marked: DataFrame


def exact_dedup(raw: DataFrame, frames: PersistedFrames, counts: dict[str, int]) -> Unique:
    """Mark the exact duplicates among the valid records; what later steps need of them."""
    marked = frames.keep(stages.exact_dedup(raw.where(F.col("reason").isNull())))
    representatives = marked.where(F.col("dup_of").isNull()).drop(*_PARSE_ONLY_COLUMNS)
    counts["unique"] = num_unique = representatives.count()
    if num_unique == 0:
        reasons = {r["reason"]: r["count"] for r in raw.groupBy("reason").count().collect()}
        raise InputError(f"every record was rejected ({reasons}): check the column flags")
    # What the write stage needs of the parsed rows, without texts and vectors of kept rows.
    outcomes = frames.keep(raw.select(*_OUTCOME_COLUMNS), small=True)
    duplicates = frames.keep(
        marked.where(F.col("dup_of").isNotNull()).select(*_DUPLICATE_COLUMNS), small=True
    )
    counts["exact_duplicates"] = duplicates.count()
    outcomes.count()
    return Unique(representatives, num_unique, outcomes, duplicates, marked)


def embed(
    spark: SparkSession,
    config: CurateConfig,
    unique: Unique,
    model_path: str | None,
    frames: PersistedFrames,
    counts: dict[str, int],
) -> tuple[DataFrame, EncoderSpec | None]:
    """The unique rows with unit-norm ``embedding`` (cached), and the encoder used (None
    for precomputed vectors)."""
    ordered = unique.representatives.repartition(
        max(2, math.ceil(unique.num_rows / ROWS_PER_EMBED_PARTITION)), "id"
    ).sortWithinPartitions("id")
    spec = None
    if config.embedding_column:
        embedded = stages.normalize_embeddings(ordered).drop("given_embedding")
    else:
        assert model_path is not None
        threads = int(spark.conf.get("spark.task.cpus", "1") or "1")
        spec = EncoderSpec(
            model_path, resolve_precision(config.precision), config.encode_batch_size, threads
        )
        embedded = stages.embed(ordered, spec, config.pair_column is not None)
    embedded = frames.keep(embedded)
    counts["rows"] = embedded.count()
    return embedded, spec


def cluster(
    config: CurateConfig,
    embedded: DataFrame,
    num_rows: int,
    frames: PersistedFrames,
    counts: dict[str, int],
) -> tuple[stages.KMeansFit, DataFrame]:
    """The k-means fit, and the rows with their clusters (cached)."""
    kmeans = stages.fit_kmeans(
        embedded,
        config.num_clusters or default_num_clusters(num_rows),
        config.kmeans_sample_size,
        config.kmeans_iterations,
        config.seed,
        num_rows,
    )
    clustered = frames.keep(stages.assign_clusters(embedded, kmeans.centroids))
    counts["clusters"] = len(kmeans.centroids)
    counts["sampled"] = kmeans.sample_size
    counts["rows"] = clustered.count()
    return kmeans, clustered


def semantic_dedup(
    config: CurateConfig, clustered: DataFrame, frames: PersistedFrames, counts: dict[str, int]
) -> DataFrame:
    """The clustered rows with their SemDeDup decision (``keep``, ``dup_of``; cached)."""
    deduped = frames.keep(
        stages.semantic_dedup(
            clustered,
            config.eps,
            config.near_eps,
            config.keep_policy,
            config.second_cluster,
            persist=lambda df: frames.keep(df, small=True),  # edge lists, released at close
        )
    )
    counts["removed"] = deduped.where(~F.col("keep")).count()
    return deduped


def concepts(
    config: CurateConfig,
    deduped: DataFrame,
    vocabulary: list[str] | None,
    spec: EncoderSpec | None,
    frames: PersistedFrames,
    counts: dict[str, int],
) -> DataFrame:
    """The rows with ``concepts``: zero-shot from ``vocabulary`` when there is one (cached,
    and then ``deduped`` is released here), else those given in the input (a projection
    of ``deduped``, which stays cached)."""
    if vocabulary is None:  # no vectors to compare: a projection of the cached rows
        annotated = _given_concepts(deduped, config.concept_column)
    else:
        annotated = frames.keep(_zero_shot_concepts(deduped, config, vocabulary, spec))
    counts["annotated"] = (
        annotated.where(F.size("concepts") > 0).count()
        if vocabulary or config.concept_column
        else 0
    )
    if vocabulary is not None:
        # Only now: releasing the rows before `annotated` is materialised by the count
        # makes Spark recompute them from the corpus, embedding every text again.
        frames.release(deduped)
    return annotated


def write(
    config: CurateConfig,
    files: list[InputFile],
    unique: Unique,
    annotated: DataFrame,
    kmeans: stages.KMeansFit,
    dimension: int,
    staging: Path,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Write rows, rejects and centroids; the shards written and the balanced accounting."""
    rows = with_exact_duplicates(annotated, unique.duplicates)
    shards = write_rows(rows, staging, dimension, config, unique.num_rows)
    write_rejects(unique.outcomes.where(F.col("reason").isNotNull()), files, staging)
    np.save(layout.centroids_path(staging), kmeans.centroids.astype(np.float32))
    accounting = account(unique.outcomes, rows)
    check_balanced(accounting)
    return shards, accounting


def _zero_shot_concepts(
    df: DataFrame, config: CurateConfig, vocabulary: list[str], spec: EncoderSpec | None
) -> DataFrame:
    assert spec is not None, "CurateConfig refuses zero-shot concepts with precomputed vectors"
    vectors = cached_encoder(spec).encode(vocabulary)
    return stages.annotate_concepts(
        df, vectors, vocabulary, config.concept_threshold, config.max_concepts
    )


def _given_concepts(df: DataFrame, concept_column: str | None) -> DataFrame:
    """The concepts given in the input (none when the input has no concept column)."""
    empty = F.array().cast("array<string>")
    if concept_column:
        return df.withColumn("concepts", F.coalesce("given_concepts", empty))
    return df.withColumn("concepts", empty)
