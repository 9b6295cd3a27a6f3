"""The write stage: the curated rows and the rejects, from Spark partitions to Parquet files.

Each task writes its own file straight from its Arrow batches (`files.write_parquet`), so
no row passes through the driver; the driver only renames the files and collects per-file
row counts for the manifest. `write_step` is this stage in the curation job: rows,
rejects and centroids, and the row accounting of the whole run.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark import TaskContext
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batchcraft.dataset import layout
from batchcraft.dataset.schema import CONTRACT_COLUMNS, REJECTS_SCHEMA, row_schema, to_contract
from batchcraft.pipeline.config import CurateConfig, default_num_shards
from batchcraft.pipeline.dedup.stage import Unique
from batchcraft.pipeline.incremental.stage import count_against
from batchcraft.pipeline.minhash.kept_keys import write_kept_keys
from batchcraft.pipeline.minhash.settings import MinhashSettings
from batchcraft.pipeline.minhash.stage import NearUnique
from batchcraft.pipeline.read.column_plan import ColumnPlan
from batchcraft.pipeline.read.column_types import KEPT_COLUMNS, unnest_kept_columns
from batchcraft.pipeline.read.inputs import InputFile
from batchcraft.pipeline.write.accounting import account, check_balanced
from batchcraft.pipeline.write.files import number_shards, write_parquet
from batchcraft.storage import Location, list_files, write_bytes


def with_duplicates(
    annotated: DataFrame,
    duplicates: DataFrame,
    inherit_ref_loss: bool = False,
    max_sim: float | None = 1.0,
    previous: DataFrame | None = None,
) -> DataFrame:
    """Removed duplicates that were never embedded (exact and MinHash duplicates) take
    the vectors, cluster and concepts of the row they duplicate (and its ``ref_loss`` with
    ``inherit_ref_loss``: a score of the text and pair they share, or nearly); they keep
    their own kept input columns (KEPT_COLUMNS). Their ``max_sim`` is ``max_sim`` (1 for
    an exact copy; None for a MinHash duplicate, which semantic dedup never compared).
    A duplicate of a ``previous`` dataset's row (``curate --against``) takes that row's."""
    names = [
        "embedding",
        *(["pair_embedding"] if "pair_embedding" in annotated.columns else []),
        "cluster",
        "centroid_sim",
        "concepts",
        *(["ref_loss"] if inherit_ref_loss else []),
    ]
    inherited = annotated.select(F.col("id").alias("dup_of"), *names)
    if previous is not None:
        from_previous = previous.select(F.col("id").alias("dup_of"), *names)
        inherited = inherited.unionByName(from_previous)
    if inherit_ref_loss:
        duplicates = duplicates.drop("ref_loss")
    duplicates = (
        duplicates.join(inherited, "dup_of")
        .withColumn("max_sim", F.lit(max_sim).cast("float"))
        .withColumn("keep", F.lit(False))
    )
    kept = [KEPT_COLUMNS] if KEPT_COLUMNS in annotated.columns else []
    return annotated.select(*_contract_columns(annotated), *kept).unionByName(
        duplicates.select(*_contract_columns(duplicates), *kept), allowMissingColumns=True
    )


def _contract_columns(frame: DataFrame) -> list[str]:
    return [c for c in CONTRACT_COLUMNS if c in frame.columns]


def dataset_schema(dimension: int, config: CurateConfig, columns: ColumnPlan) -> pa.Schema:
    """The schema of the written rows: the contract's columns, the label and the user
    columns the plan keeps, each in its own type."""
    return row_schema(
        dimension,
        config.embedding_dtype,
        label_type=columns.label.type if columns.label else None,
        user_columns=[pa.field(kept.name, kept.type) for kept in columns.user_columns],
    )


def write_rows(
    rows: DataFrame,
    staging: Location,
    dimension: int,
    config: CurateConfig,
    num_unique: int,
    columns: ColumnPlan,
) -> tuple[list[dict[str, Any]], list[tuple[str, str | None, int]]]:
    """Write the rows as ``data/part-*.parquet`` shards sorted by id; the manifest's
    description of each shard (path, rows, kept rows), and the rows written per
    (``source``, ``dup_kind``), counted by the tasks that wrote them (counting the written
    frame again would run its whole plan again). The kept input ``columns`` come out of
    their KEPT_COLUMNS struct under their own names and types."""
    schema = dataset_schema(dimension, config, columns)
    num_shards = config.num_shards or default_num_shards(num_unique)

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        converted = [to_contract(unnest_kept_columns(batch), schema) for batch in batches]
        if not converted or not sum(b.num_rows for b in converted):
            return
        context = TaskContext.get()
        assert context is not None, "runs inside a Spark task"
        name = f"task-{context.partitionId():05d}.parquet"
        write_parquet(converted, staging.join(layout.DATA_DIR, name), schema)
        table = pa.Table.from_batches(converted).select(["source", "dup_kind", "keep"])
        groups = (
            table.group_by(["source", "dup_kind"], use_threads=False)
            .aggregate([("keep", "count"), ("keep", "sum")])
            .combine_chunks()
        )
        yield pa.Table.from_pydict(
            {
                "name": [name] * groups.num_rows,
                "source": groups.column("source").cast(pa.string()),
                "dup_kind": groups.column("dup_kind").cast(pa.string()),
                "rows": groups.column("keep_count").cast(pa.int64()),
                "kept": groups.column("keep_sum").fill_null(0).cast(pa.int64()),
            }
        ).to_batches()[0]

    written = (
        rows.repartition(num_shards, "id")
        .sortWithinPartitions("id")
        .mapInArrow(write, "name string, source string, dup_kind string, rows long, kept long")
        .collect()
    )
    counts: dict[str, tuple[int, int]] = {}
    for row in written:
        rows_in, kept = counts.get(row["name"], (0, 0))
        counts[row["name"]] = (rows_in + row["rows"], kept + row["kept"])
    shards = []
    for original, name in zip(sorted(counts), number_shards(staging), strict=True):
        rows_in, kept = counts[original]
        shards.append({"path": f"{layout.DATA_DIR}/{name}", "num_rows": rows_in, "num_kept": kept})
    return shards, [(row["source"], row["dup_kind"], row["rows"]) for row in written]


def write_rejects(rejects: DataFrame, files: list[InputFile], staging: Location) -> None:
    """Write the rejects, in input order, as ``rejects/part-00000.parquet`` (an empty file
    when there are none, so readers always find the schema)."""
    paths = {index: file.path for index, file in enumerate(files)}
    target = staging.join(layout.REJECTS_DIR, "part-00000.parquet")

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
            write_parquet(tables, target, REJECTS_SCHEMA)
            yield pa.RecordBatch.from_pydict({"rows": [sum(t.num_rows for t in tables)]})

    rejects.repartition(1).sortWithinPartitions("file_index", "record").mapInArrow(
        write, "rows long"
    ).collect()
    if not list_files(staging.join(layout.REJECTS_DIR)):
        write_parquet([], target, REJECTS_SCHEMA)


def write_step(
    config: CurateConfig,
    files: list[InputFile],
    unique: Unique,
    near: NearUnique,
    annotated: DataFrame,
    centroids: np.ndarray,
    dimension: int,
    staging: Location,
    columns: ColumnPlan,
    previous: DataFrame | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any] | None]:
    """Write rows, rejects, centroids and the kept rows' MinHash band keys (when MinHash
    ran); the shards written, the balanced accounting (with ``against_previous``: the rows
    removed as duplicates of a ``previous`` row) and the manifest's record of the keys."""
    inherit_ref_loss = config.reference_scores == "pairs"
    rows = annotated
    if near.duplicates is not None:
        rows = with_duplicates(rows, near.duplicates, inherit_ref_loss, None, previous)
    rows = with_duplicates(rows, unique.duplicates, inherit_ref_loss, 1.0, previous)
    shards, written = write_rows(rows, staging, dimension, config, unique.num_rows, columns)
    keys = None
    if near.keys is not None:
        kept_ids = annotated.where(F.col("keep")).select("id")
        settings = MinhashSettings.from_config(config)
        keys = write_kept_keys(near.keys, kept_ids, staging, settings, len(shards))
    write_rejects(unique.outcomes.where(F.col("reason").isNotNull()), files, staging)
    saved = io.BytesIO()
    np.save(saved, centroids.astype(np.float32))
    write_bytes(staging.join(layout.CENTROIDS), saved.getvalue())
    accounting = count_outcomes(unique.outcomes, written)
    check_balanced(accounting)
    if previous is not None:
        removed = [unique.duplicates, annotated.where(~F.col("keep"))]
        removed += [] if near.duplicates is None else [near.duplicates]
        accounting["against_previous"] = count_against(removed, previous.select("id"))
    return shards, accounting, keys


def count_outcomes(
    records: DataFrame, written: list[tuple[str, str | None, int]]
) -> dict[str, Any]:
    """Count every input record into exactly one outcome, from independent aggregations.

    ``records`` holds one row per parsed input record (rejected or not); ``written``
    counts the dataset's rows as the write tasks wrote them, per (``source``,
    ``dup_kind``). The counts are the manifest's ``counts`` section.
    """
    inputs = {r["source"]: r["count"] for r in records.groupBy("source").count().collect()}
    rejected = records.where(F.col("reason").isNotNull()).groupBy("source", "reason").count()
    return account(
        inputs,
        [(r["source"], r["reason"], r["count"]) for r in rejected.collect()],
        written,
    )
