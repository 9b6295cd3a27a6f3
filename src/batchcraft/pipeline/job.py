"""The curation job: wires the stages, accounts for every row, writes the dataset atomically."""

from __future__ import annotations

import datetime as dt
import logging
import math
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark import TaskContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batchcraft import __version__
from batchcraft.errors import BatchcraftError, ConfigError, InputError
from batchcraft.pipeline import stages
from batchcraft.pipeline.accounting import account, check_balanced
from batchcraft.pipeline.concepts import read_vocabulary
from batchcraft.pipeline.config import CurateConfig, default_num_clusters, default_num_shards
from batchcraft.pipeline.embed import (
    EncoderSpec,
    cached_encoder,
    model_name,
    resolve_model_path,
    resolve_precision,
)
from batchcraft.pipeline.inputs import InputFile, check_columns, discover, plan_chunks
from batchcraft.pipeline.output import (
    REJECTS_SCHEMA,
    SCHEMA_VERSION,
    StagedOutput,
    dataset_schema,
    number_shards,
    to_contract,
    write_manifest,
    write_parquet,
)
from batchcraft.pipeline.parse import ColumnMapping
from batchcraft.pipeline.progress import StageClock
from batchcraft.pipeline.session import spark_session

LOG = logging.getLogger("batchcraft.pipeline")
STAGES = ("read+validate", "exact_dedup", "embed", "cluster", "semantic_dedup", "concepts", "write")
ROWS_PER_EMBED_PARTITION = 2000
_PARSE_ONLY_COLUMNS = ("file_index", "record", "reason", "detail", "raw", "dedup_key")
# Kept to the end of the job: every parsed record's outcome (accounting, rejects files) ...
_OUTCOME_COLUMNS = ("file_index", "record", "source", "id", "reason", "detail", "raw")
# ... and the exact duplicates, which take their representative's vectors when written.
_DUPLICATE_COLUMNS = ("id", "text", "pair_text", "source", "dup_of", "dup_kind")
ROWS_PER_SHUFFLE_PARTITION = 25_000
_SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"
CONTRACT_COLUMNS = (
    "id",
    "text",
    "pair_text",
    "source",
    "embedding",
    "pair_embedding",
    "cluster",
    "centroid_sim",
    "dup_of",
    "dup_kind",
    "max_sim",
    "keep",
    "concepts",
)


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
    if isinstance(inputs, CurateConfig):
        config = inputs
    else:
        if out is None:
            raise ConfigError("curate() needs an output directory: curate(inputs, out, ...)")
        paths = (inputs,) if isinstance(inputs, str) else tuple(inputs)
        config = CurateConfig(inputs=paths, out=str(out), **params)
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
    with StagedOutput(config.out, config.overwrite) as output:
        own_session = spark is None
        clock = StageClock(len(STAGES))
        session = spark or spark_session(config.master, config.spark_conf, clock.interactive)
        frames = _Frames(session)
        try:
            manifest = _run(
                session, config, files, vocabulary, model_path, output.staging, clock, frames
            )
        finally:
            try:
                frames.close()  # a failure here must not hide the job's own error
            except Exception:  # e.g. the JVM is gone: log it and still stop the session
                LOG.warning("could not release the job's cached frames", exc_info=True)
            if own_session:
                session.stop()
    if config.write_report:
        _write_report(Path(config.out))
    return manifest


def _run(
    spark: SparkSession,
    config: CurateConfig,
    files: list[InputFile],
    vocabulary: list[str] | None,
    model_path: str | None,
    staging: Path,
    clock: StageClock,
    frames: _Frames,
) -> dict[str, Any]:
    with clock.stage("read+validate") as counts:
        raw, parsed = _read_and_validate(spark, config, files, frames, counts)
    with clock.stage("exact_dedup") as counts:
        unique = _exact_dedup(raw, frames, counts)
    with clock.stage("embed") as counts:
        embedded, spec = _embed(spark, config, unique, model_path, frames, counts)
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
        rows = _with_exact_duplicates(annotated, unique.duplicates)
        shards = _write_rows(rows, staging, dimension, config, unique.num_rows)
        _write_rejects(unique.outcomes.where(F.col("reason").isNotNull()), files, staging)
        np.save(staging / "centroids.npy", kmeans.centroids.astype(np.float32))
        accounting = account(unique.outcomes, rows)
        check_balanced(accounting)
        counts["rows"] = sum(shard["num_rows"] for shard in shards)
    manifest = _manifest(
        config, files, accounting, shards, dimension, kmeans, spec, vocabulary, clock.timings
    )
    write_manifest(staging, manifest)
    return manifest


def _read_and_validate(
    spark: SparkSession,
    config: CurateConfig,
    files: list[InputFile],
    frames: _Frames,
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
        raw = frames.keep(stages.reject_duplicate_ids(raw))
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


def _exact_dedup(raw: DataFrame, frames: _Frames, counts: dict[str, int]) -> _Unique:
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
    frames: _Frames,
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
    frames: _Frames,
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
    config: CurateConfig, clustered: DataFrame, frames: _Frames, counts: dict[str, int]
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
    frames: _Frames,
    counts: dict[str, int],
) -> DataFrame:
    if vocabulary is None:  # no vectors to compare: a projection of the cached rows
        annotated = _given_concepts(deduped, config.concept_column)
    else:
        annotated = frames.keep(_zero_shot_concepts(deduped, config, vocabulary, spec))
        frames.release(deduped)
    counts["annotated"] = (
        annotated.where(F.size("concepts") > 0).count()
        if vocabulary or config.concept_column
        else 0
    )
    return annotated


class _Frames:
    """The job's persisted DataFrames, each released once no later stage reads it, and
    the session settings the job changes (restored by `close`).

    Frames holding texts or vectors go to disk only: one 1M-row frame with 384-d vectors
    is about 1.6 GB, and in a local-mode JVM the cache competes with the shuffles' and
    sorts' execution memory (a 1M-row run ran out of heap with two such frames cached in
    memory). Small frames (per-record outcomes, exact duplicates) stay in memory.
    """

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self._kept: list[DataFrame] = []
        self._shuffle_partitions = spark.conf.get(_SHUFFLE_PARTITIONS)

    def keep(self, df: DataFrame, *, small: bool = False) -> DataFrame:
        from pyspark import StorageLevel

        level = StorageLevel.MEMORY_AND_DISK_DESER if small else StorageLevel.DISK_ONLY
        self._kept.append(df.persist(level))
        return self._kept[-1]

    def release(self, *frames: DataFrame) -> None:
        for df in frames:
            df.unpersist()
            self._kept = [kept for kept in self._kept if kept is not df]

    def scale_shuffles(self, num_rows: int) -> None:
        """About `ROWS_PER_SHUFFLE_PARTITION` rows per shuffle partition, never fewer
        partitions than the session's setting (adaptive execution merges small ones)."""
        configured = int(self._shuffle_partitions or "200")
        wanted = math.ceil(num_rows / ROWS_PER_SHUFFLE_PARTITION)
        if wanted > configured:
            self.spark.conf.set(_SHUFFLE_PARTITIONS, str(wanted))

    def close(self) -> None:
        self.release(*self._kept)
        if self._shuffle_partitions is not None:
            self.spark.conf.set(_SHUFFLE_PARTITIONS, self._shuffle_partitions)


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


def _with_exact_duplicates(annotated: DataFrame, duplicates: DataFrame) -> DataFrame:
    """Exact duplicates take the vectors, cluster and concepts of the row they duplicate."""
    inherited = annotated.select(
        F.col("id").alias("dup_of"),
        "embedding",
        *(["pair_embedding"] if "pair_embedding" in annotated.columns else []),
        "cluster",
        "centroid_sim",
        "concepts",
    )
    duplicates = (
        duplicates.join(inherited, "dup_of")
        .withColumn("max_sim", F.lit(1.0).cast("float"))
        .withColumn("keep", F.lit(False))
    )
    columns = [c for c in CONTRACT_COLUMNS if c in annotated.columns or c in duplicates.columns]
    return annotated.select(*columns).unionByName(duplicates.select(*columns))


def _write_rows(
    rows: DataFrame,
    staging: Path,
    dimension: int,
    config: CurateConfig,
    num_unique: int,
) -> list[dict[str, Any]]:
    schema = dataset_schema(dimension, config.embedding_dtype)
    data_dir = str(staging / "data")
    num_shards = config.num_shards or default_num_shards(num_unique)

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        converted = [to_contract(batch, schema) for batch in batches]
        if not converted or not sum(b.num_rows for b in converted):
            return
        context = TaskContext.get()
        assert context is not None, "runs inside a Spark task"
        name = f"task-{context.partitionId():05d}.parquet"
        count = write_parquet(converted, Path(data_dir) / name, schema)
        kept = sum(int(np.sum(b.column("keep").to_numpy(zero_copy_only=False))) for b in converted)
        yield pa.RecordBatch.from_pydict({"name": [name], "rows": [count], "kept": [kept]})

    written = (
        rows.repartition(num_shards, "id")
        .sortWithinPartitions("id")
        .mapInArrow(write, "name string, rows long, kept long")
        .collect()
    )
    counts = {row["name"]: (row["rows"], row["kept"]) for row in written}
    shards = []
    for original, path in zip(sorted(counts), number_shards(staging / "data"), strict=True):
        rows_in, kept = counts[original]
        shards.append({"path": f"data/{path.name}", "num_rows": rows_in, "num_kept": kept})
    return shards


def _write_rejects(rejects: DataFrame, files: list[InputFile], staging: Path) -> None:
    paths = {index: file.path for index, file in enumerate(files)}
    rejects_dir = str(staging / "rejects")

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        tables = []
        for batch in batches:
            names = [paths[i] for i in batch.column("file_index").to_pylist()]
            tables.append(
                pa.RecordBatch.from_arrays(
                    [
                        batch.column("source"),
                        pa.array(names, pa.string()),
                        batch.column("record"),
                        batch.column("id"),
                        batch.column("reason"),
                        batch.column("detail"),
                        batch.column("raw"),
                    ],
                    schema=REJECTS_SCHEMA,
                )
            )
        if tables and sum(t.num_rows for t in tables):
            write_parquet(tables, Path(rejects_dir) / "part-00000.parquet", REJECTS_SCHEMA)
            yield pa.RecordBatch.from_pydict({"rows": [sum(t.num_rows for t in tables)]})

    rejects.repartition(1).sortWithinPartitions("file_index", "record").mapInArrow(
        write, "rows long"
    ).collect()
    if not any((staging / "rejects").iterdir()):
        write_parquet([], staging / "rejects" / "part-00000.parquet", REJECTS_SCHEMA)


def _manifest(
    config: CurateConfig,
    files: list[InputFile],
    accounting: dict[str, Any],
    shards: list[dict[str, Any]],
    dimension: int,
    kmeans: stages.KMeansFit,
    spec: EncoderSpec | None,
    vocabulary: list[str] | None,
    timings: dict[str, float],
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "created_by": f"batchcraft {__version__}",
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "num_rows": sum(s["num_rows"] for s in shards),
        "num_kept": sum(s["num_kept"] for s in shards),
        "has_pairs": config.pair_column is not None,
        "embedding": {
            "model": "precomputed" if config.embedding_column else model_name(config.model),
            "model_path": spec.model_path if spec else None,
            "dim": dimension,
            "dtype": config.embedding_dtype,
            "precision": spec.precision if spec else None,
            "normalized": True,
        },
        "clustering": {
            "num_clusters": len(kmeans.centroids),
            "sample_size": kmeans.sample_size,
            "requested_sample_size": config.kmeans_sample_size,
            "iterations": config.kmeans_iterations,
            "algorithm": "faiss spherical k-means",
            "seed": config.seed,
        },
        "semantic_dedup": {
            "eps": config.eps,
            "threshold": config.threshold,
            "near_threshold": config.near_threshold,
            "keep_policy": config.keep_policy,
            "second_cluster": config.second_cluster,
        },
        "concepts": {
            "mode": "zero-shot" if vocabulary else ("column" if config.concept_column else "none"),
            "vocabulary": vocabulary,
            "threshold": config.concept_threshold,
        },
        "counts": accounting,
        "timings": timings,
        "parameters": config.to_dict(),
        "inputs": [
            {
                "path": f.path,
                "format": f.format,
                "source": f.source,
                "bytes": f.bytes,
                "sha256": f.sha256,
            }
            for f in files
        ],
        "shards": shards,
        "environment": {"python": sys.version.split()[0], "spark_master": config.master},
    }


def _write_report(directory: Path) -> None:
    try:
        from batchcraft.report import write_report
    except ImportError:  # the report package is optional at this stage of the job
        return
    write_report(directory)
