"""The curation job: wires the stages, accounts for every row, writes the dataset atomically."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batchcraft.errors import BatchcraftError, ConfigError, InputError
from batchcraft.pipeline import stages
from batchcraft.pipeline.accounting import account, check_balanced
from batchcraft.pipeline.concepts import read_vocabulary
from batchcraft.pipeline.config import CurateConfig, default_num_clusters
from batchcraft.pipeline.embed import (
    EncoderSpec,
    cached_encoder,
    resolve_model_path,
    resolve_precision,
)
from batchcraft.pipeline.frames import PersistedFrames
from batchcraft.pipeline.inputs import InputFile, check_columns, discover, plan_chunks
from batchcraft.pipeline.manifest import build_manifest
from batchcraft.pipeline.output import StagedOutput, write_manifest
from batchcraft.pipeline.parse import ColumnMapping
from batchcraft.pipeline.progress import StageClock
from batchcraft.pipeline.session import spark_session
from batchcraft.pipeline.write_stage import with_exact_duplicates, write_rejects, write_rows

LOG = logging.getLogger("batchcraft.pipeline")
STAGES = ("read+validate", "exact_dedup", "embed", "cluster", "semantic_dedup", "concepts", "write")
ROWS_PER_EMBED_PARTITION = 2000
_PARSE_ONLY_COLUMNS = ("file_index", "record", "reason", "detail", "raw", "dedup_key")
# Kept to the end of the job: every parsed record's outcome (accounting, rejects files) ...
_OUTCOME_COLUMNS = ("file_index", "record", "source", "id", "reason", "detail", "raw")
# ... and the exact duplicates, which take their representative's vectors when written.
_DUPLICATE_COLUMNS = ("id", "text", "pair_text", "source", "dup_of", "dup_kind")


def curate(
    inputs: str | Sequence[str] | CurateConfig,
    out: str | None = None,
    *,
    spark: SparkSession | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Run the whole curation job and return the manifest it wrote.

    Everything a user can get wrong about the inputs is checked before Spark starts. The
    dataset is built in a staging directory and renamed into place only on success.

    Args:
        inputs: Input paths/globs, or a complete CurateConfig.
        out: Output directory (when ``inputs`` is not a CurateConfig).
        spark: An existing session to run in (left running); by default one is created for
            ``config.master`` and stopped at the end.
        **params: Any other CurateConfig field, e.g. ``eps=0.05``, ``pair_column="answer"``.

    Example:
        >>> curate("corpus/*.jsonl", "curated/", id_column="id", eps=0.1)  # doctest: +SKIP
    """
    config = _config_of(inputs, out, params)
    checked = _check_before_spark(config)
    with StagedOutput(config.out, config.overwrite) as output:
        manifest = _run_in_session(spark, checked, output.staging)
    if config.write_report:
        _write_report(Path(config.out))
    return manifest


def _config_of(
    inputs: str | Sequence[str] | CurateConfig, out: str | None, params: dict[str, Any]
) -> CurateConfig:
    if isinstance(inputs, CurateConfig):
        return inputs
    if out is None:
        raise ConfigError("curate() needs an output directory: curate(inputs, out, ...)")
    paths = (inputs,) if isinstance(inputs, str) else tuple(inputs)
    return CurateConfig(inputs=paths, out=str(out), **params)


@dataclass(frozen=True)
class _Checked:
    """What the job knows before Spark starts: a wrong path, column, vocabulary or model
    directory has stopped it already, in a second rather than after a Spark start-up."""

    config: CurateConfig
    files: list[InputFile]
    vocabulary: list[str] | None
    model_path: str | None  # None for precomputed embeddings


def _check_before_spark(config: CurateConfig) -> _Checked:
    files = discover(config.inputs, config.source)
    check_columns(
        files,
        {
            "--text-column": config.text_column,
            "--id-column": config.id_column,
            "--pair-column": config.pair_column,
            "--concept-column": config.concept_column,
            "--embedding-column": config.embedding_column,
        },
    )
    vocabulary = read_vocabulary(config.concepts_file) if config.concepts_file else None
    model_path = None if config.embedding_column else resolve_model_path(config.model)
    return _Checked(config, files, vocabulary, model_path)


def _run_in_session(spark: SparkSession | None, checked: _Checked, staging: Path) -> dict[str, Any]:
    """Run the stages in ``spark`` (else in a session of its own, stopped at the end),
    releasing every frame the job cached whether it succeeds or fails."""
    config = checked.config
    clock = StageClock(len(STAGES))
    session = spark or spark_session(config.master, config.spark_conf, clock.interactive)
    frames = PersistedFrames(session)
    try:
        return _run(session, checked, staging, clock, frames)
    finally:
        try:
            frames.close()  # a failure here must not hide the job's own error
        except Exception:  # e.g. the JVM is gone: log it and still stop the session
            LOG.warning("could not release the job's cached frames", exc_info=True)
        if spark is None:
            session.stop()


def _run(
    spark: SparkSession,
    checked: _Checked,
    staging: Path,
    clock: StageClock,
    frames: PersistedFrames,
) -> dict[str, Any]:
    """Every stage in turn, each frame released once no later stage reads it; the manifest."""
    config, files, vocabulary = checked.config, checked.files, checked.vocabulary
    with clock.stage("read+validate") as counts:
        raw, parsed = _read_and_validate(spark, config, files, frames, counts)
    with clock.stage("exact_dedup") as counts:
        unique = _exact_dedup(raw, frames, counts)
    with clock.stage("embed") as counts:
        embedded, spec = _embed(spark, config, unique, checked.model_path, frames, counts)
        frames.release(parsed, raw, unique.marked)
        dimension = len(embedded.select("embedding").first()[0])  # type: ignore[index]
    with clock.stage("cluster") as counts:
        kmeans, clustered = _cluster(config, embedded, unique.num_rows, frames, counts)
        frames.release(embedded)
    with clock.stage("semantic_dedup") as counts:
        deduped = _semantic_dedup(config, clustered, frames, counts)
        frames.release(clustered)
    with clock.stage("concepts") as counts:
        annotated = _concepts(config, deduped, vocabulary, spec, frames, counts)
    with clock.stage("write") as counts:
        shards, accounting = _write(config, files, unique, annotated, kmeans, dimension, staging)
        counts["rows"] = sum(shard["num_rows"] for shard in shards)
    manifest = build_manifest(
        config, files, accounting, shards, dimension, kmeans, spec, vocabulary, clock.timings
    )
    write_manifest(staging, manifest)
    return manifest


def _read_and_validate(
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
class _Unique:
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


def _exact_dedup(raw: DataFrame, frames: PersistedFrames, counts: dict[str, int]) -> _Unique:
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
    return _Unique(representatives, num_unique, outcomes, duplicates, marked)


def _embed(
    spark: SparkSession,
    config: CurateConfig,
    unique: _Unique,
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


def _cluster(
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


def _semantic_dedup(
    config: CurateConfig, clustered: DataFrame, frames: PersistedFrames, counts: dict[str, int]
) -> DataFrame:
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


def _concepts(
    config: CurateConfig,
    deduped: DataFrame,
    vocabulary: list[str] | None,
    spec: EncoderSpec | None,
    frames: PersistedFrames,
    counts: dict[str, int],
) -> DataFrame:
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


def _write(
    config: CurateConfig,
    files: list[InputFile],
    unique: _Unique,
    annotated: DataFrame,
    kmeans: stages.KMeansFit,
    dimension: int,
    staging: Path,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Write rows, rejects and centroids; the shards written and the balanced accounting."""
    rows = with_exact_duplicates(annotated, unique.duplicates)
    shards = write_rows(rows, staging, dimension, config, unique.num_rows)
    write_rejects(unique.outcomes.where(F.col("reason").isNotNull()), files, staging)
    np.save(staging / "centroids.npy", kmeans.centroids.astype(np.float32))
    accounting = account(unique.outcomes, rows)
    check_balanced(accounting)
    return shards, accounting


def _zero_shot_concepts(
    df: DataFrame, config: CurateConfig, vocabulary: list[str], spec: EncoderSpec | None
) -> DataFrame:
    if spec is None:
        raise BatchcraftError(
            "zero-shot concepts need the encoder: do not combine --concepts with --embedding-column"
        )
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


def _write_report(directory: Path) -> None:
    try:
        from batchcraft.report import write_report
    except ImportError:  # the report package is optional at this stage of the job
        return
    write_report(directory)
